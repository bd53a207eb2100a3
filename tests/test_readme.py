"""The README's code blocks run as pasted (issue 13): the Python quickstart in one
namespace, and every command of its shell blocks in order, in a scratch folder, with
small sizes put in for the big ones (``--n 1000000`` becomes ``--n 5``, a training run
one step). Nothing else about a command is changed: a file it reads must have been
written by a command above it, and an output it writes must not exist yet."""

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import have_torch

README = Path(__file__).resolve().parents[1] / "README.md"
QPISET = Path(sys.executable).parent / "qpiset"

# flag -> the small value it gets in the test (only flags that set a size or a duration)
SMALL = {"--n": "5", "--kernels": "1", "--limit": "4", "--images": "1", "--epochs": "1",
         "--max-minutes": "1"}
# what a training command gets on top, per command (sizes only)
EXTRA = {
    ("train", "detector"): ["--steps-per-epoch", "1", "--batch-size", "2", "--val-images", "1",
                            "--val-kernels", "0", "--kernels", "0"],
    ("train", "kernel-vae"): ["--kernels", "3", "--test-kernels", "1", "--images-per-kernel",
                              "2", "--vae-steps", "2", "--observer-steps", "2",
                              "--batch-size", "2", "--workers", "1"],
}
NOT_RUN = {"make", "pip", "python3", "git", "cd"}  # installing is what `make test` did
LEARNED = {"unet", "hybrid", "vae", "direct", "train"}


def readme_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def shell_commands() -> list[list[str]]:
    """Every command of the README's ``bash`` blocks: continuation lines joined, comments
    dropped, ``a && b`` as two commands."""
    commands = []
    for block in readme_blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words:
                cut = words.index("&&") if "&&" in words else len(words)
                commands.append(words[:cut])
                words = words[cut + 1:]
    return commands


def small(words: list[str]) -> list[str]:
    out = list(words)
    for i, word in enumerate(out[:-1]):
        if word in SMALL:
            out[i + 1] = SMALL[word]
    extra = EXTRA.get(tuple(out[1:3]), [])
    for flag in extra[::2]:  # an extra flag replaces the README's value of the same flag
        if flag in out:
            j = out.index(flag)
            del out[j:j + 2]
    return out + extra


def test_shell_commands_are_read_whole():
    """The parser the test below relies on: continuations, comments, &&, quotes."""
    commands = shell_commands()
    assert ["qpiset", "generate", "big.zarr", "--n", "1000000", "--workers", "2"] in commands
    assert ["qpiset", "validate", "big.zarr"] in commands
    ag = next(c for c in commands if "ag.npz" in c)
    assert "Ag(111)" in ag and "--strength" in ag and "#" not in " ".join(ag)
    assert small(["qpiset", "generate", "a.csv", "--n", "1000000"])[-1] == "5"
    assert all(c[0] in NOT_RUN | {"qpiset"} for c in commands), \
        [c for c in commands if c[0] not in NOT_RUN | {"qpiset"}]


@pytest.mark.slow
def test_readme_shell_blocks_run(tmp_path):
    env = dict(os.environ, CI="true")
    ran = []
    for words in shell_commands():
        if words[0] in NOT_RUN:
            continue
        if LEARNED & set(words) and not have_torch():
            continue
        cmd = [str(QPISET)] + small(words)[1:]
        start = time.perf_counter()
        res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
        print(f"{time.perf_counter() - start:6.1f} s  {shlex.join(small(words))}")
        assert res.returncode == 0, f"README: {shlex.join(words)}\n{res.stdout[-2000:]}" \
                                    f"\n{res.stderr[-2000:]}"
        ran.append(words[1])
    assert {"generate", "generate-family", "detect", "kernel", "bench", "show", "report",
            "validate", "info", "convert"} <= set(ran)


@pytest.mark.slow
def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = readme_blocks("python")
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    ran = 0
    for block in blocks:
        if "learned" in block and not have_torch():
            continue
        exec(compile(block, f"README.md python block {ran}", "exec"), namespace)
        ran += 1
    assert ran >= 1 and os.path.exists("train.csv") and os.path.exists("report.html")
