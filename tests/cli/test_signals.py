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


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table in /proc")
def test_a_signal_stops_the_worker_processes_too(tmp_path):
    data = tmp_path / "d.csv"
    subprocess.run([EXE, "generate", str(data), "--n", "40", "--min-scatterers", "60"],
                   check=True, capture_output=True)
    out = tmp_path / "p.json"
    proc = subprocess.Popen([EXE, "detect", str(data), "--out", str(out), "--workers", "2",
                             "--no-calibrate"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(workers := _children(proc.pid)) < 2:  # the two workers (and a tracker) run
        assert proc.poll() is None and time.monotonic() < deadline, "no workers started"
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and not out.exists()
    time.sleep(0.5)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
             and " Z " not in Path(f"/proc/{pid}/stat").read_text()]
    assert alive == [], alive
