"""How long `panjereh up` takes on a warm home: from a stopped platform to every service
answering `/health`.

    PANJEREH_TEST_SLOT=N .venv/bin/python benchmarks/platform_bench.py [--json PATH]

Runs the `panjereh` command as a user runs it, on a platform home of its own
(`.data/bench-up-<slot>`, kept for the next run) and on ports of its own, shifted by the
slot like every benchmark's, so it touches neither the developer's platform (`.data/dev`,
9092, 800x) nor a test run's nor the other benchmarks' stage. In that home: `down` (what
an interrupted earlier run may have left), `up`, `down`, then the timed `up` (the broker's
jars cached, the home's CA, data, topics and migrations in place: what `make up` costs on
every day but the first), then `down` again. It refuses to start while any of its ports
is taken. Needs no `--home`: the platform it measures is its own.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.stage import SLOT, platform_ports, write_figures  # noqa: E402
from infra.platform import Ports  # noqa: E402

HOME = REPO / ".data" / f"bench-up-{SLOT}"
#: A window of ports no other slot's benchmarks, tests or platform use.
PORTS = platform_ports(kafka=49094, postgres=55498, first_process=18051)


def panjereh_command() -> list[str]:
    """The CLI as installed in the interpreter's environment (`.venv/bin/panjereh`)."""
    script = Path(sys.executable).parent / "panjereh"
    return [str(script)] if script.exists() else [sys.executable, "-m", "infra.cli"]


def environment() -> dict[str, str]:
    """The caller's environment without any PANJEREH_* setting (which could point the CLI
    at another platform), plus this benchmark's home and ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANJEREH_")}
    env["PANJEREH_HOME"] = str(HOME)
    for field in fields(Ports):
        env[f"PANJEREH_{field.name.upper()}_PORT"] = str(getattr(PORTS, field.name))
    return env


def panjereh(command: str, timeout: float) -> float:
    """Run `panjereh COMMAND` on this benchmark's home; the seconds it took."""
    started = time.perf_counter()
    done = subprocess.run(
        [*panjereh_command(), command],
        cwd=REPO,
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        check=False,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        tail = done.stdout.decode(errors="replace").strip().splitlines()[-20:]
        raise SystemExit(f"panjereh {command} failed ({done.returncode}):\n" + "\n".join(tail))
    return took


def taken_ports() -> list[int]:
    taken = []
    for field in fields(Ports):
        port = getattr(PORTS, field.name)
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                taken.append(port)
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="also write the figures there"
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="most seconds one `panjereh` command may take"
    )
    arguments = parser.parse_args()
    print(f"platform home {HOME.relative_to(REPO)}; Kafka on {PORTS.kafka}", flush=True)
    panjereh("down", arguments.timeout)
    taken = taken_ports()
    if taken:
        raise SystemExit(f"ports {taken} are taken by another process: nothing was started")
    try:
        first = panjereh("up", arguments.timeout)
        print(f"panjereh up (first of this run): {first:.1f} s", flush=True)
        stopped = panjereh("down", arguments.timeout)
        print(f"panjereh down: {stopped:.1f} s", flush=True)
        warm = panjereh("up", arguments.timeout)
        print(f"panjereh up, warm (after down): {warm:.1f} s", flush=True)
    finally:
        panjereh("down", arguments.timeout)
    write_figures(arguments, {"up_first_s": first, "down_s": stopped, "up_warm_s": warm})


if __name__ == "__main__":
    main()
