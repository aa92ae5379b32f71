"""Stopping the platform's background processes: together, and for good."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from infra.platform.processes import ManagedProcess, alive, stop_together

# On SIGTERM: say so in a file, wait (up to 10 s) for the other process to say the same,
# then leave a verdict. Stopped one after the other, the first would wait in vain.
_WAITS_FOR_ITS_PEER = """
import pathlib, signal, sys, time
me, peer = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
def on_term(*_):
    me.with_suffix(".term").touch()
    deadline = time.monotonic() + 10
    while not peer.with_suffix(".term").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    me.with_suffix(".verdict").write_text(
        "peer" if peer.with_suffix(".term").exists() else "alone")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
me.with_suffix(".ready").touch()
while True:
    time.sleep(1)
"""

_IGNORES_SIGTERM = """
import pathlib, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
pathlib.Path(sys.argv[1]).with_suffix(".ready").touch()
while True:
    time.sleep(1)
"""


def _process(home: Path, name: str, script: str, *args: str) -> ManagedProcess:
    return ManagedProcess(
        name=name,
        command=(sys.executable, "-c", script, *args),
        pid_file=home / "run" / f"{name}.pid",
        log_file=home / "logs" / f"{name}.log",
        home=home,
    )


def _start(process: ManagedProcess, home: Path, marker: Path) -> int:
    pid = process.start(dict(os.environ), home)
    while not marker.with_suffix(".ready").exists():
        assert alive(pid), process.log_tail()
        time.sleep(0.02)
    return pid


def test_processes_stopped_together_are_all_asked_to_stop_before_any_is_waited_for(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    processes = [
        _process(tmp_path, "first", _WAITS_FOR_ITS_PEER, str(first), str(second)),
        _process(tmp_path, "second", _WAITS_FOR_ITS_PEER, str(second), str(first)),
    ]
    markers = [first, second]
    pids = [_start(p, tmp_path, marker) for p, marker in zip(processes, markers, strict=True)]

    assert stop_together(processes) == ["first", "second"]

    assert first.with_suffix(".verdict").read_text() == "peer"
    assert second.with_suffix(".verdict").read_text() == "peer"
    assert not any(alive(pid) for pid in pids)
    assert not list((tmp_path / "run").glob("*.pid"))


def test_a_process_that_ignores_sigterm_is_killed_once_the_timeout_passes(
    tmp_path: Path,
) -> None:
    stubborn = _process(tmp_path, "stubborn", _IGNORES_SIGTERM, str(tmp_path / "stubborn"))
    pid = _start(stubborn, tmp_path, tmp_path / "stubborn")

    assert stubborn.stop(timeout=0.5)

    assert not alive(pid)
    assert not stubborn.pid_file.exists()
    assert not stubborn.stop(), "a stopped process is not stopped twice"
