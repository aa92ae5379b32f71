"""Background processes owned by the local platform, tracked by pid files.

Linux /proc is used to inspect processes (no psutil: it is not a runtime dependency).
A pid file alone is not proof of ownership: the process may be gone, or its pid reused by
something unrelated. Before a pid is trusted (reported as running, or signalled) the live
process's command line must end with the command we launched, and, where the platform home
is in its environment, that home must be ours. Stale pid files are simply removed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class PlatformError(RuntimeError):
    """Something of the local platform could not be started, reached or stopped."""


HOME_ENV = "PANJEREH_HOME"


@dataclass(frozen=True)
class ManagedProcess:
    """A background process of the platform, identified by its pid file and command.

    `command` is what is executed; `home` is the platform home, exported as PANJEREH_HOME
    to the child so that the pid can later be matched to this platform and no other.
    """

    name: str
    command: tuple[str, ...]
    pid_file: Path
    log_file: Path
    home: Path

    def pid(self) -> int | None:
        """The pid of the live process this pid file names, or None (stale files removed)."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except FileNotFoundError:
            return None
        except (ValueError, IndexError):
            self.pid_file.unlink(missing_ok=True)  # garbage, e.g. a half-written file
            return None
        if self._matches(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def running(self) -> bool:
        """Whether the process named by the pid file is alive and really ours."""
        return self.pid() is not None

    def _matches(self, pid: int) -> bool:
        cmdline = proc_cmdline(pid)
        if cmdline == [] and alive(pid):
            return True  # alive but its argv unreadable this instant (just exec'd)
        # The executable may be spelled differently (symlinks); the arguments may not.
        if cmdline is None or tuple(cmdline[1:]) != self.command[1:]:
            return False
        home = proc_environ(pid).get(HOME_ENV)
        return home is None or home == str(self.home)

    def start(self, env: Mapping[str, str], cwd: Path) -> int:
        """Launch the process in its own session, logs appended to `log_file`.

        Does nothing if it already runs; returns the pid either way.
        """
        existing = self.pid()
        if existing is not None:
            return existing
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        child_env = {**env, HOME_ENV: str(self.home)}
        with self.log_file.open("ab") as log:
            log.write(f"\n=== {time.strftime('%F %T')} starting {self.name}\n".encode())
            log.flush()
            # A new session detaches the child from the CLI's terminal and lets us signal
            # its whole process group later.
            proc = subprocess.Popen(
                self.command,
                cwd=cwd,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def stop(self, timeout: float = 20.0) -> bool:
        """SIGTERM the process group, wait up to `timeout`, then SIGKILL it.

        Only signals a pid that is verifiably ours. Returns whether something was stopped.
        """
        return bool(stop_together([self], timeout))

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the log, for error messages."""
        return tail(self.log_file, lines)


def stop_together(processes: Sequence[ManagedProcess], timeout: float = 20.0) -> list[str]:
    """Stop several processes at once, as `ManagedProcess.stop` stops one; returns the
    names of those that were running."""
    running = [(process, pid) for process in processes if (pid := process.pid()) is not None]
    terminate(*(pid for _, pid in running), timeout=timeout)
    for process in processes:
        process.pid_file.unlink(missing_ok=True)
    return [process.name for process, _ in running]


def terminate(*pids: int, timeout: float) -> None:
    """SIGTERM each pid's process group (or the pid alone), all at once, then SIGKILL what
    is left after `timeout`: processes that stop together take the longest one's time."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in pids if alive(pid)]
    for pid in left:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in left) and time.monotonic() < deadline:
        time.sleep(0.05)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        # Our children lead their own process group (start_new_session): signal all of it,
        # so helpers they spawned go too.
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    # A child of this very process stays a zombie until waited for.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def alive(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): existence is all we can know
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def proc_cmdline(pid: int) -> list[str] | None:
    """The argv of a live process, or None if it is gone (or a zombie)."""
    if not alive(pid):
        return None
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        # No procfs (macOS): `ps` gives the command line joined by spaces.
        result = subprocess.run(
            ["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True, text=True
        )
        return result.stdout.split() or None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def proc_environ(pid: int) -> dict[str, str]:
    """The environment of a process, or {} if it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.decode(errors="replace").partition("=")
        if sep:
            env[key] = value
    return env


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a text file ('' if it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether GET `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def http_json(url: str, timeout: float = 2.0) -> Any:
    """The JSON body GET `url` answers with, whatever its status; None if none came."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as refused:
        with refused:
            try:
                return json.load(refused)
            except ValueError:
                return None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    alive: Callable[[], bool] | None = None,
    log: Path | None = None,
    interval: float = 0.25,
) -> None:
    """Poll `ready` until true; raise PlatformError with the log's tail on timeout or death."""
    deadline = time.monotonic() + timeout
    seen_dead = 0
    while True:
        if ready():
            return
        problem = None
        # Dead only when seen so twice in a row: on a loaded machine a process can be
        # unreadable in /proc for an instant.
        seen_dead = seen_dead + 1 if alive is not None and not alive() else 0
        if seen_dead >= 2:
            problem = f"{what}: the process exited"
        elif time.monotonic() > deadline:
            problem = f"{what}: not ready after {timeout:.0f} s"
        if problem is not None:
            if log is not None:
                problem += f"\n--- last lines of {log} ---\n{tail(log)}"
            raise PlatformError(problem)
        time.sleep(interval)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def run(
    command: Sequence[str], *, check: bool = True, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a short command, capturing output; PlatformError with its output if it fails."""
    result = subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else None,
        check=False,
    )
    if check and result.returncode != 0:
        raise PlatformError(
            f"command failed ({result.returncode}): {' '.join(command)}\n"
            f"{result.stdout}{result.stderr}"
        )
    return result


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running loop.

    The platform API is synchronous; a caller that is itself async (e.g. an async pytest
    fixture) would make `asyncio.run` fail, so then it runs on a helper thread instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
