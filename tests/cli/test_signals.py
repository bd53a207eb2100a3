"""Ending a command by a signal (Ctrl-C, kill, a batch system's time limit, a closed
terminal) leaves nothing behind and exits with the conventional status 128 + N."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).with_name("qpiset"))


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130),
                                       (signal.SIGHUP, 129)])
def test_a_signal_removes_the_partial_output(tmp_path, sig, code):
    out = tmp_path / "big.csv"
    proc = subprocess.Popen([EXE, "generate", str(out), "--n", "200000"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".big.csv.*.part")):  # wait until it is writing
        assert proc.poll() is None and time.monotonic() < deadline, "never started writing"
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"interrupted by {signal.Signals(sig).name}" in err and "Traceback" not in err
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)
