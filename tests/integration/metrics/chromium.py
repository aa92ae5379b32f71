"""Headless Chromium for the pages' tests: a page's DOM after its scripts ran, or a
screenshot of it, as a reader's browser would show it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import pytest


def chromium(*args: str) -> str:
    """Run headless Chromium with `args` (e.g. `--dump-dom URL`); returns its output.

    Each run gets a fresh profile, so nothing one page left is seen by the next.
    """
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed: run infra/bootstrap.sh")
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    return result.stdout
