"""`panjereh`: run the platform locally and prepare its infrastructure.

Commands (home: $PANJEREH_HOME or .data/dev; ports: PANJEREH_*_PORT, see infra/README.md):

    up          Kafka, PostgreSQL, topics, migrations, every service and the worker
    down        stop what `up` started; data is kept
    status      what runs, with pids and addresses
    logs        follow every log (-n lines of history)
    reset       down, then delete the home with all data
    infra up    only Kafka + PostgreSQL + topics + migrations
    init        only topics, database roles + migrations, against running Kafka/PostgreSQL
                given by PANJEREH_KAFKA_BOOTSTRAP_SERVERS / PANJEREH_DATABASE_URL (an
                administrator's DSN; roles' passwords: PANJEREH_<SERVICE>_DATABASE_PASSWORD)
                (compose `init`), else the local platform's
    topics      list the declared topics
    migrate     database roles + every service's migrations (same database as `init`)
    asyncapi    print the AsyncAPI document of the platform's topics
    catalog load-reference
                load the catalog's reference agencies and services (idempotent)
    audit verify  check the exchange's audit log hash chain; names the first broken record
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence

from infra.platform import LocalPlatform, PlatformError, Ports
from infra.platform.paths import default_home
from infra.platform.provision import InitReport, apply_all_migrations, init_platform


def _platform() -> LocalPlatform:
    return LocalPlatform(home=default_home(), ports=Ports.from_env())


def _targets() -> tuple[str, str]:
    """Kafka and PostgreSQL to prepare: from the environment, else the local platform's.

    The DSN is an administrator's: the local platform's superuser, or whatever
    PANJEREH_DATABASE_URL names (compose gives its `init` the superuser's).
    """
    local = _platform()
    database_url = os.environ.get("PANJEREH_DATABASE_URL")
    return (
        os.environ.get("PANJEREH_KAFKA_BOOTSTRAP_SERVERS", local.kafka_bootstrap),
        database_url if database_url is not None else local.admin_database_url,
    )


def _database_passwords() -> Mapping[str, str | None]:
    """The services' roles' passwords: PANJEREH_<SERVICE>_DATABASE_PASSWORD when the
    database comes from the environment (a role not given keeps its password), else the
    local platform home's."""
    from shared.db import SERVICES

    if "PANJEREH_DATABASE_URL" in os.environ:
        return {s: os.environ.get(f"PANJEREH_{s.upper()}_DATABASE_PASSWORD") for s in SERVICES}
    return _platform().postgres.passwords().services


def _print_report(report: InitReport) -> None:
    for line in report.lines():
        print(line)


def cmd_up(_: argparse.Namespace) -> int:
    platform = _platform()
    print(f"platform home: {platform.home}")
    platform.up()
    return 0


def cmd_down(_: argparse.Namespace) -> int:
    stopped = _platform().down()
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def cmd_status(_: argparse.Namespace) -> int:
    platform = _platform()
    print(f"platform home: {platform.home}")
    for row in platform.status():
        state = f"running (pid {row.pid})" if row.running else "stopped"
        print(f"{row.name:<16} {state:<22} {row.listens}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    logs = sorted((_platform().home / "logs").glob("*.log"))
    if not logs:
        print("no logs yet: run `panjereh up`", file=sys.stderr)
        return 1
    # tail -F follows across restarts (files recreated or appended to).
    os.execvp("tail", ["tail", "-F", "-n", str(args.lines), *map(str, logs)])


def cmd_reset(_: argparse.Namespace) -> int:
    platform = _platform()
    platform.reset()
    print(f"removed {platform.home}")
    return 0


def cmd_infra_up(_: argparse.Namespace) -> int:
    platform = _platform()
    _print_report(platform.start_infrastructure())
    for name, where in platform.endpoints()[:2]:
        print(f"{name:<16} {where}")
    return 0


def cmd_init(_: argparse.Namespace) -> int:
    bootstrap, database_url = _targets()
    passwords = _database_passwords()
    _print_report(asyncio.run(init_platform(bootstrap, database_url, database_passwords=passwords)))
    return 0


def cmd_migrate(_: argparse.Namespace) -> int:
    database_url = _targets()[1]
    report = InitReport()
    asyncio.run(apply_all_migrations(database_url, report, _database_passwords()))
    _print_report(report)
    return 0


def cmd_topics(_: argparse.Namespace) -> int:
    from shared.topics import TOPICS

    for spec in TOPICS:
        config = " ".join(f"{k}={v}" for k, v in spec.broker_config().items())
        print(f"{spec.name:<36} partitions={spec.partitions} {config}")
    return 0


def cmd_asyncapi(_: argparse.Namespace) -> int:
    from shared.asyncapi import render

    sys.stdout.write(render())
    return 0


def cmd_catalog_load_reference(_: argparse.Namespace) -> int:
    from services.catalog.reference.__main__ import main as load_reference

    # The catalog's own role: reference data belongs to the catalog like the rest.
    os.environ.setdefault("PANJEREH_DATABASE_URL", _platform().database_url_for("catalog"))
    load_reference()
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from services.exchange.audit import verify_audit_log

    result = asyncio.run(verify_audit_log(_targets()[1], args.schema))
    if result.broken is not None:
        print(
            f"audit log BROKEN at record {result.broken.seq}: {result.broken.reason}"
            f" ({result.checked} records hold before it)"
        )
        return 2
    print(f"audit log intact: {result.checked} records, head {result.head_seq}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser (each subcommand sets `func`)."""
    parser = argparse.ArgumentParser(
        prog="panjereh", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start everything").set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop everything; keep data").set_defaults(func=cmd_down)
    sub.add_parser("status", help="what runs where").set_defaults(func=cmd_status)
    logs = sub.add_parser("logs", help="follow every log")
    logs.add_argument("-n", "--lines", type=int, default=50, help="lines of history")
    logs.set_defaults(func=cmd_logs)
    sub.add_parser("reset", help="down, then delete all data").set_defaults(func=cmd_reset)
    infra = sub.add_parser("infra", help="infrastructure only")
    infra_sub = infra.add_subparsers(dest="infra_command", required=True)
    infra_sub.add_parser("up", help="Kafka, PostgreSQL, topics, migrations").set_defaults(
        func=cmd_infra_up
    )
    infra_sub.add_parser("init", help="same as `panjereh init`").set_defaults(func=cmd_init)
    infra_sub.add_parser("down", help="same as `panjereh down`").set_defaults(func=cmd_down)
    sub.add_parser("init", help="topics + migrations on running infra").set_defaults(func=cmd_init)
    sub.add_parser("topics", help="list declared topics").set_defaults(func=cmd_topics)
    sub.add_parser("migrate", help="apply migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("asyncapi", help="print the AsyncAPI document").set_defaults(func=cmd_asyncapi)
    catalog = sub.add_parser("catalog", help="the catalog's data")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", required=True)
    catalog_sub.add_parser(
        "load-reference", help="load reference agencies and services (idempotent)"
    ).set_defaults(func=cmd_catalog_load_reference)
    audit = sub.add_parser("audit", help="the exchange's audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the audit log's hash chain")
    verify.add_argument("--schema", default="exchange", help="the exchange's schema")
    verify.set_defaults(func=cmd_audit_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `panjereh` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except PlatformError as exc:
        print(f"panjereh: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
