"""Write ``golden.json`` from the current code: ``python tests/golden/record.py [CASE ...]``.

Run it only when a change of results is intended, and say why in the commit."""

from __future__ import annotations

import json
import sys
import tempfile
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cases import CASES  # noqa: E402
from fingerprint import environment, fingerprint  # noqa: E402


def run_case(name: str, folder: Path) -> dict:
    from click.testing import CliRunner

    from qpiset.cli import cli

    _, commands, artifacts = CASES[name]
    runner = CliRunner()
    import os

    here = os.getcwd()
    os.chdir(folder)
    try:
        for cmd in commands:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = runner.invoke(cli, cmd)
            if res.exit_code != 0:
                raise RuntimeError(f"{name}: {' '.join(cmd)} exited {res.exit_code}: "
                                   f"{res.output}{res.exception!r}")
        return {path: fingerprint(kind, folder / path) for kind, path in artifacts}
    finally:
        os.chdir(here)


def main(names: list[str]) -> None:
    path = HERE / "golden.json"
    record = json.loads(path.read_text()) if path.exists() else {"cases": {}}
    record["environment"] = environment()
    for name in names or list(CASES):
        with tempfile.TemporaryDirectory() as tmp:
            print(f"{name} ...", flush=True)
            record["cases"][name] = run_case(name, Path(tmp))
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
