"""A project-local PostgreSQL cluster: its own data directory, port and loopback-only TCP.

The cluster is a developer/test cluster: password (SCRAM-SHA-256) authentication on
127.0.0.1 only, no Unix socket. The superuser `postgres` and every service's role have
passwords generated on first start and kept in the home (`credentials.py`); each service
logs in as its own role (`service_url`), only `panjereh init` as the superuser
(`admin_url`). A cluster made by an older release with `trust` is moved to passwords on
its next start. PostgreSQL refuses to run as root, so when we are root (CI, containers)
its programs run as the `postgres` system user, which must own the data directory and be
able to reach it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from infra.platform import credentials
from infra.platform.processes import PlatformError, port_open, run, run_coroutine, wait_until
from infra.platform.roles import scram_verifier
from shared.db import role_of

HOST = "127.0.0.1"
SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
APP_DATABASE = "panjereh"
#: The single superuser role older releases gave every service; retired on start.
LEGACY_ROLE = "panjereh"

#: Who may connect how: passwords, over loopback TCP only (there is no Unix socket).
HBA = (
    "# Panjereh local cluster (infra/platform/postgres.py): passwords, loopback TCP only\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
    "host all all ::1/128 scram-sha-256\n"
)


def bin_dir() -> Path:
    """The newest installed server's bin directory (/usr/lib/postgresql/<major>/bin)."""
    candidates = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    if not candidates:
        on_path = shutil.which("initdb")
        if on_path:
            return Path(on_path).parent
        raise PlatformError("PostgreSQL server not found: run infra/bootstrap.sh")

    def major(path: Path) -> float:
        try:
            return float(path.parent.name)
        except ValueError:
            return 0.0

    return max(candidates, key=major)


def _as_root() -> bool:
    return os.geteuid() == 0


def _wrap(command: list[str]) -> list[str]:
    """Run as the postgres system user when we are root (initdb/postgres refuse root)."""
    if _as_root():
        return ["runuser", "-u", SYSTEM_USER, "--", *command]
    return command


def _check_reachable(path: Path) -> None:
    """Fail clearly if the postgres user cannot traverse every directory above `path`."""
    try:
        user = pwd.getpwnam(SYSTEM_USER)
    except KeyError as exc:
        raise PlatformError(f"no `{SYSTEM_USER}` system user: run infra/bootstrap.sh") from exc
    for parent in reversed(path.resolve().parents):
        st = parent.stat()
        if st.st_uid == user.pw_uid:
            continue
        bit = stat.S_IXGRP if st.st_gid == user.pw_gid else stat.S_IXOTH
        if not st.st_mode & bit:
            raise PlatformError(
                f"the `{SYSTEM_USER}` user cannot enter {parent} (mode "
                f"{stat.filemode(st.st_mode)}), so PostgreSQL cannot reach {path}; "
                "use a platform home under a world-traversable directory, or `chmod o+x` it"
            )


@dataclass(frozen=True)
class PostgresCluster:
    """The cluster in `<home>/postgres`, listening on 127.0.0.1:`port`."""

    home: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.home / "postgres"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "postgres.log"

    @property
    def hba_file(self) -> Path:
        return self.data_dir / "pg_hba.conf"

    def passwords(self) -> credentials.DatabasePasswords:
        """The home's database passwords (generated on first use)."""
        return credentials.load_or_create(self.home)

    @property
    def location_url(self) -> str:
        """Where the application database is, with no role: it cannot log in by itself."""
        return f"postgresql://{HOST}:{self.port}/{APP_DATABASE}"

    @property
    def admin_url(self) -> str:
        """The superuser's DSN on the application database: for `panjereh init` only."""
        return self._url(SUPERUSER, self.passwords().admin, APP_DATABASE)

    def service_url(self, service: str) -> str:
        """The DSN of a service's own role (`shared.db.role_of`) on the application database."""
        return self._url(role_of(service), self.passwords().services[service], APP_DATABASE)

    def _url(self, user: str, password: str, database: str) -> str:
        return f"postgresql://{user}:{password}@{HOST}:{self.port}/{database}"

    @property
    def _maintenance_url(self) -> str:
        """The superuser on the `postgres` database, which exists before ours does."""
        return self._url(SUPERUSER, self.passwords().admin, "postgres")

    def _pg_ctl(self, *args: str, check: bool = True) -> int:
        command = [str(bin_dir() / "pg_ctl"), "-D", str(self.data_dir), *args]
        return run(_wrap(command), check=check).returncode

    def running(self) -> bool:
        """Whether this cluster's postmaster runs (per `pg_ctl status`)."""
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        return self._pg_ctl("status", check=False) == 0

    def pid(self) -> int | None:
        """The postmaster's pid, if it runs."""
        if not self.running():
            return None
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.touch()
        if _as_root():
            # The home is ours; make it enterable (not listable) so postgres can reach its
            # data directory inside it. Directories above it are checked, never changed.
            self.home.chmod(self.home.stat().st_mode | stat.S_IXOTH)
            _check_reachable(self.data_dir)
            user = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
            os.chown(self.log_file, user.pw_uid, user.pw_gid)
        self.data_dir.chmod(0o700)

    def init(self) -> None:
        """initdb once (skipped when PG_VERSION exists) with our loopback-only settings."""
        self._prepare_dirs()
        if (self.data_dir / "PG_VERSION").exists():
            return
        with self._password_file() as password_file:
            run(
                _wrap(
                    [
                        str(bin_dir() / "initdb"),
                        "-D",
                        str(self.data_dir),
                        "-U",
                        SUPERUSER,
                        "--auth=scram-sha-256",
                        f"--pwfile={password_file}",
                        "--encoding=UTF8",
                        "--locale=C.UTF-8",
                    ]
                )
            )
        self._write_hba()
        settings = (
            "\n# Panjereh local cluster (infra/platform/postgres.py)\n"
            f"listen_addresses = '{HOST}'\n"
            "unix_socket_directories = ''\n"
            "fsync = off\n"  # a disposable dev/test cluster; speed over crash safety
            "synchronous_commit = off\n"
            "full_page_writes = off\n"
            "max_connections = 200\n"
        )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(settings)

    @contextlib.contextmanager
    def _password_file(self) -> Iterator[Path]:
        """The superuser's password in a file only initdb's user can read, for its life."""
        descriptor, name = tempfile.mkstemp(prefix="panjereh-initdb-")  # 0600
        path = Path(name)
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(self.passwords().admin + "\n")
            if _as_root():
                user = pwd.getpwnam(SYSTEM_USER)
                os.chown(path, user.pw_uid, user.pw_gid)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def _write_hba(self) -> None:
        # Rewritten in place, so the file keeps its owner (the postgres user when root).
        with self.hba_file.open("w") as hba:
            hba.write(HBA)

    def start(self, timeout: float = 60.0) -> None:
        """initdb if needed, start (unless running), wait for connections, ensure the database.

        A cluster an older release made with `trust` gets the superuser's password, its
        `panjereh` superuser role retired and password authentication (reloaded live).
        """
        if not self.running():
            self.init()
            if port_open(HOST, self.port):
                raise PlatformError(
                    f"port {self.port} is taken by another process; choose another "
                    "PostgreSQL port (PANJEREH_POSTGRES_PORT)"
                )
            self._pg_ctl(
                "start",
                "-w",
                "-t",
                str(int(timeout)),
                "-l",
                str(self.log_file),
                "-o",
                f"-p {self.port}",
                check=False,
            )
        wait_until(
            lambda: run_coroutine(self._accepts),
            timeout=timeout,
            what=f"PostgreSQL on {HOST}:{self.port}",
            alive=self.running,
            log=self.log_file,
            interval=0.3,
        )
        run_coroutine(self._ensure_app_database)
        if self.hba_file.read_text() != HBA:
            run_coroutine(self._leave_trust)

    async def _accepts(self) -> bool:
        import asyncpg

        try:
            conn = await asyncpg.connect(self._maintenance_url, timeout=3)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    async def _ensure_app_database(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self._maintenance_url, timeout=10)
        try:
            if not await conn.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", APP_DATABASE
            ):
                await conn.execute(f'CREATE DATABASE "{APP_DATABASE}" OWNER "{SUPERUSER}"')
        finally:
            await conn.close()

    async def _leave_trust(self) -> None:
        """Move a cluster made with `trust` to passwords, retiring the old single role."""
        import asyncpg

        conn = await asyncpg.connect(self.admin_url, timeout=10)
        try:
            # A verifier, never the password: the statement may end up in the server's log.
            verifier = scram_verifier(self.passwords().admin)
            await conn.execute(f"ALTER ROLE \"{SUPERUSER}\" PASSWORD '{verifier}'")
            if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", LEGACY_ROLE):
                # What it owned goes to the superuser; `panjereh init` then gives each
                # service's schema to the service's role.
                await conn.execute(f'REASSIGN OWNED BY "{LEGACY_ROLE}" TO "{SUPERUSER}"')
                await conn.execute(f'DROP OWNED BY "{LEGACY_ROLE}"')
                await conn.execute(f'DROP ROLE "{LEGACY_ROLE}"')
            self._write_hba()
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()

    def stop(self) -> bool:
        """`pg_ctl stop -m fast`; data stays. Returns whether it was running."""
        if not self.running():
            return False
        self._pg_ctl("stop", "-m", "fast", "-w", "-t", "60")
        return True
