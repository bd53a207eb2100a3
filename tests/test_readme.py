"""The README's Python quickstart runs as pasted (in a scratch folder, blocks in order,
one namespace; the learned-models block where torch is installed)."""

import os
import re
from pathlib import Path

import pytest

from helpers import have_torch

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
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
