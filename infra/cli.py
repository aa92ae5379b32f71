"""`panjereh`: run the platform locally and prepare its infrastructure.

Commands (home: $PANJEREH_HOME or .data/dev; ports: PANJEREH_*_PORT, see infra/README.md):

    up          Kafka, PostgreSQL, topics, migrations, every service and the worker
    down        stop what `up` started; data is kept
    status      what runs, with pids and addresses
    logs        follow every log (-n lines of history)
    reset       down, then delete the home with all data
    infra up    only Kafka + PostgreSQL + topics + migrations
    init        only topics, users, ACLs, database roles and migrations, against running
                Kafka/PostgreSQL given by PANJEREH_KAFKA_* (as admin) and PANJEREH_DATABASE_URL
                (an administrator's DSN; roles' passwords: PANJEREH_<SERVICE>_DATABASE_PASSWORD)
                (compose `init`), else the local platform's
    acl plan    what differs between the broker's users and ACLs and the registers
    acl apply   make the broker's users and ACLs equal to the registers (idempotent)
    credentials NAME [--rotate | --retire-previous]
                print NAME's librdkafka properties file (`kcat -F FILE ...` reads it);
                --rotate gives NAME a new secret while the old one still works,
                --retire-previous ends the old one once its clients have switched
    kafka-config DIR
                the compose broker's TLS material and configuration, written into DIR
                (admin password from PANJEREH_KAFKA_PASSWORD_ADMIN)
    topics      list the declared topics
    migrate     database roles + every service's migrations (same database as `init`)
    asyncapi    print the AsyncAPI document of the platform's topics
    strimzi     print the Helm chart's register of topics and users (Strimzi resources)
    catalog load-reference
                load the catalog's reference agencies and services (idempotent)
    programme load-reference
                load the programme's reference indicators, targets and figures into the
                metrics service's register (idempotent: entries it has are left alone)
    dlq list [TOPIC]
                dead letters by topic and reason, with the oldest and newest
    dlq show TOPIC OFFSET [--partition N]
                one dead letter: why, where from, by whom, and its original bytes
    dlq replay TOPIC [--reason TEXT] [--since ISO-TIME]
                send the originals back to their topic (consumers drop what they have
                handled, so a replay twice counts once)
    audit verify [--keys URL|FILE] [--unanchored]
                check the exchange's audit log hash chain against the checkpoints the
                exchange signed (exchange.audit-checkpoints, read as admin) and its public
                keys; names the first broken record (exit status 2)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.platform import LocalPlatform, PlatformError, Ports
from infra.platform.paths import default_home
from infra.platform.provision import InitReport, Passwords, apply_all_migrations, init_platform
from shared.kafka_access import KafkaAccess
from shared.principals import ADMIN
from shared.settings import PlatformSettings
from shared.topics import SINGLE_BROKER, Durability


def _platform() -> LocalPlatform:
    return LocalPlatform(home=default_home(), ports=Ports.from_env())


class EnvironmentPasswords:
    """Principals' SCRAM passwords from `PANJEREH_KAFKA_PASSWORD_<NAME>` (compose, Helm)."""

    def get(self, name: str) -> str:
        variable = "PANJEREH_KAFKA_PASSWORD_" + name.upper().replace("-", "_")
        value = os.environ.get(variable, "")
        if not value:
            raise PlatformError(f"{variable} is not set: {name} needs a password")
        return value


def _given_kafka() -> bool:
    return any(
        os.environ.get(name)
        for name in ("PANJEREH_KAFKA_CREDENTIALS_FILE", "PANJEREH_KAFKA_USERNAME")
    )


@dataclass(frozen=True)
class Targets:
    """The Kafka (as admin) and PostgreSQL (as an administrator) that `init` prepares."""

    admin: KafkaAccess
    passwords: Passwords
    database_url: str
    development: bool
    durability: Durability


def _targets() -> Targets:
    """From the environment (compose), else the local platform's.

    The DSN is an administrator's: the local platform's superuser, or whatever
    PANJEREH_DATABASE_URL names (compose gives its `init` the superuser's).
    """
    local = _platform()
    settings = PlatformSettings()
    passwords: Passwords
    if _given_kafka():
        admin, passwords = settings.kafka, EnvironmentPasswords()
    else:
        admin, passwords = local.kafka_admin, local.kafka.passwords
    if admin.username != ADMIN:
        raise PlatformError(f"provisioning needs the {ADMIN} principal, not {admin.username}")
    database_url = os.environ.get("PANJEREH_DATABASE_URL")
    return Targets(
        admin=admin,
        passwords=passwords,
        database_url=database_url if database_url is not None else local.admin_database_url,
        development=settings.environment != "production",
        # The local platform's single broker holds one replica of everything.
        durability=settings.durability if _given_kafka() else SINGLE_BROKER,
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
    targets = _targets()
    report = asyncio.run(
        init_platform(
            targets.admin,
            targets.database_url,
            targets.passwords,
            development=targets.development,
            database_passwords=_database_passwords(),
            durability=targets.durability,
        )
    )
    if not _given_kafka():
        _platform().write_credentials()
    _print_report(report)
    return 0


def cmd_acl(args: argparse.Namespace) -> int:
    from infra.platform.access import BrokerAccess

    targets = _targets()
    access = BrokerAccess(targets.admin, targets.passwords)
    if args.acl_command == "plan":
        plan = access.plan(development=targets.development)
    else:
        plan = access.apply(development=targets.development)
    for line in plan.lines():
        print(line)
    return 0


def cmd_credentials(args: argparse.Namespace) -> int:
    from shared.principals import AGENCY_PREFIX, PRINCIPALS

    platform = _platform()
    if args.rotate or args.retire_previous:
        return _rotate(platform, args.name, retire=args.retire_previous)
    if args.name.startswith(AGENCY_PREFIX):
        # An agency's secret exists only once the access manager has issued it.
        issued = platform.credentials_file(args.name)
        if not issued.exists():
            print(
                f"panjereh: nothing issued to {args.name} (is the agency registered?)",
                file=sys.stderr,
            )
            return 2
        sys.stdout.write(issued.read_text("utf-8"))
        return 0
    names = {spec.name.value for spec in PRINCIPALS} | {ADMIN}
    if args.name not in names:
        print(
            f"panjereh: no principal {args.name!r}; known: {', '.join(sorted(names))}"
            f" or {AGENCY_PREFIX}<code>",
            file=sys.stderr,
        )
        return 2
    sys.stdout.write(platform.kafka_access(args.name).properties())
    return 0


def _rotate(platform: LocalPlatform, name: str, *, retire: bool) -> int:
    from infra.platform.access import BrokerAccess

    access = BrokerAccess(platform.kafka_admin, platform.kafka.passwords)
    if retire:
        done = access.retire_previous(name, platform.kafka.passwords)
        print(f"{name}: previous secret {'retired' if done else 'already gone'}")
        return 0
    mechanism = access.rotate(name, platform.kafka.passwords)
    path = platform.credentials_file(name)
    if path.exists() or not name.startswith("agency-"):
        path.write_text(platform.kafka_access(name).properties())
    print(f"{name}: new secret under {mechanism}; the old one works until --retire-previous")
    sys.stdout.write(platform.kafka_access(name).properties())
    return 0


def cmd_kafka_config(args: argparse.Namespace) -> int:
    from infra.platform.kafka import write_container_config

    admin_password = EnvironmentPasswords().get(ADMIN)
    for path in write_container_config(
        Path(args.directory),
        hostname=args.hostname,
        admin_password=admin_password,
        owner=args.owner,
    ):
        print(f"written: {path}")
    return 0


def cmd_migrate(_: argparse.Namespace) -> int:
    database_url = _targets().database_url
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


def cmd_strimzi(_: argparse.Namespace) -> int:
    from infra.strimzi import render

    sys.stdout.write(render())
    return 0


def cmd_catalog_load_reference(_: argparse.Namespace) -> int:
    from services.catalog.reference.__main__ import main as load_reference

    # The catalog's own role: reference data belongs to the catalog like the rest.
    os.environ.setdefault("PANJEREH_DATABASE_URL", _platform().database_url_for("catalog"))
    load_reference()
    return 0


def cmd_programme_load_reference(_: argparse.Namespace) -> int:
    from services.metrics.programme_reference import main as load_reference

    # The metrics service's own role: the programme register belongs to it.
    os.environ.setdefault("PANJEREH_DATABASE_URL", _platform().database_url_for("metrics"))
    load_reference()
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from services.exchange.audit import (
        CheckpointsUnavailable,
        read_trusted_checkpoints,
        verify_audit_log,
    )

    targets = _targets()
    checkpoints = None
    if not args.unanchored:
        keys = args.keys or f"http://127.0.0.1:{Ports.from_env().exchange}/keys"
        try:
            checkpoints = asyncio.run(read_trusted_checkpoints(targets.admin, keys))
        except CheckpointsUnavailable as error:
            raise PlatformError(f"{error} (--unanchored checks the chain alone)") from None
    result = asyncio.run(verify_audit_log(targets.database_url, args.schema, checkpoints))
    if result.left_out:
        print(f"{len(result.left_out)} checkpoint records not believed, e.g.:")
        for reason in result.left_out[:3]:
            print(f"  {reason}")
    if result.broken is not None:
        print(
            f"audit log BROKEN at {result.broken.named()}: {result.broken.reason}"
            f" ({result.checked} records hold before it)"
        )
        return 2
    chains = "" if len(result.chains) == 1 else f" in {len(result.chains)} chains"
    print(f"audit log intact: {result.checked} records{chains}")
    if checkpoints is None:
        print("not held to the exchange's checkpoints (--unanchored)")
        return 0
    for chain in result.chains:
        of_chain = "" if len(result.chains) == 1 else f"chain {chain.chain}: "
        if chain.anchored is None:
            print(f"{of_chain}no checkpoint signed by the exchange vouches for any record yet")
        else:
            print(
                f"{of_chain}anchored through {chain.anchored.named()};"
                f" {chain.waiting} records since wait for their checkpoint"
            )
        if chain.restored is not None and (chain.checked or chain.lost_to_restore):
            print(
                f"{of_chain}closed by the restore of {chain.restored.restored_at.isoformat()}"
                f" (backup taken {chain.restored.backup_taken_at.isoformat()}):"
                f" {chain.lost_to_restore} records the checkpoints vouched for past its"
                " head were lost with the database"
            )
    print(f"{result.checkpoints} checkpoints believed")
    return 0


def _dead_letter_topics(topic: str | None) -> list[str]:
    from infra.dead_letters import dead_letter_topics_named

    try:
        return dead_letter_topics_named(topic)
    except ValueError as error:
        raise PlatformError(str(error)) from None


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from infra.dead_letters import counts, read_dead_letters

    letters = asyncio.run(read_dead_letters(_targets().admin, _dead_letter_topics(args.topic)))
    rows = counts(letters)
    for row in rows:
        print(
            f"{row.topic}  {row.count:>6}  oldest {row.oldest:%Y-%m-%d %H:%M}"
            f"  newest {row.newest:%Y-%m-%d %H:%M}  {row.reason}"
        )
    print(f"{len(letters)} dead letters" + ("" if rows else " (none)"))
    return 0


def cmd_dlq_show(args: argparse.Namespace) -> int:
    import json

    from infra.dead_letters import find_dead_letter

    (topic,) = _dead_letter_topics(args.topic)
    letter = asyncio.run(find_dead_letter(_targets().admin, topic, args.partition, args.offset))
    if letter is None:
        raise PlatformError(f"no dead letter at {topic}:{args.partition}:{args.offset}")
    print(json.dumps(letter.summary(), ensure_ascii=False, indent=2))
    print("original bytes:")
    sys.stdout.flush()
    sys.stdout.buffer.write(letter.value + b"\n")
    return 0


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from infra.dead_letters import chosen, past_horizon, read_dead_letters, replay
    from shared.settings import DedupSettings

    admin = _targets().admin
    (topic,) = _dead_letter_topics(args.topic)
    since = datetime.fromisoformat(args.since) if args.since else None
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # a time without a zone is UTC, as letters are
    horizon = DedupSettings().dedup_horizon
    letters, too_old = past_horizon(
        chosen(asyncio.run(read_dead_letters(admin, [topic])), reason=args.reason, since=since),
        horizon,
    )
    sent = asyncio.run(replay(admin, letters))
    print(f"replayed {sent} dead letters from {topic}")
    if too_old:
        print(
            f"refused {len(too_old)} whose originals are older than the dedup horizon"
            f" ({horizon.days} days): the consumers that handled them no longer remember"
            " them, and would count them twice"
        )
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from infra.backup import BackupError, take_backup

    targets = _targets()
    try:
        manifest = take_backup(Path(args.folder), targets.database_url, targets.admin)
    except BackupError as error:
        raise PlatformError(str(error)) from None
    groups = ", ".join(sorted(manifest.offsets)) or "none yet"
    print(f"backup of {', '.join(manifest.schemas)} taken at {manifest.taken_at.isoformat()}")
    print(f"consumer groups' offsets kept: {groups}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from infra.backup import BackupError, restore_backup

    targets = _targets()
    try:
        done = asyncio.run(
            restore_backup(
                Path(args.folder), targets.database_url, targets.admin, _database_passwords()
            )
        )
    except BackupError as error:
        raise PlatformError(str(error)) from None
    for line in done:
        print(line)
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
    acl = sub.add_parser("acl", help="the broker's users and ACLs against the registers")
    acl.add_argument("acl_command", choices=("plan", "apply"))
    acl.set_defaults(func=cmd_acl)
    credentials = sub.add_parser("credentials", help="a principal's librdkafka properties")
    credentials.add_argument("name", help="a principal: identity, analyst, ...")
    credentials.add_argument("--rotate", action="store_true", help="issue a new secret")
    credentials.add_argument(
        "--retire-previous", action="store_true", help="end the secret a rotation replaced"
    )
    credentials.set_defaults(func=cmd_credentials)
    kafka_config = sub.add_parser("kafka-config", help="a container broker's TLS and config")
    kafka_config.add_argument("directory", help="where the broker reads them (a volume)")
    kafka_config.add_argument("--hostname", default="kafka", help="the broker's host name")
    kafka_config.add_argument("--owner", type=int, default=None, help="uid the broker runs as")
    kafka_config.set_defaults(func=cmd_kafka_config)
    sub.add_parser("migrate", help="apply migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("asyncapi", help="print the AsyncAPI document").set_defaults(func=cmd_asyncapi)
    sub.add_parser(
        "strimzi", help="print the Helm chart's register of topics and users"
    ).set_defaults(func=cmd_strimzi)
    catalog = sub.add_parser("catalog", help="the catalog's data")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", required=True)
    catalog_sub.add_parser(
        "load-reference", help="load reference agencies and services (idempotent)"
    ).set_defaults(func=cmd_catalog_load_reference)
    programme = sub.add_parser("programme", help="the programme register (metrics service)")
    programme_sub = programme.add_subparsers(dest="programme_command", required=True)
    programme_sub.add_parser(
        "load-reference", help="load reference indicators, targets and figures (idempotent)"
    ).set_defaults(func=cmd_programme_load_reference)
    audit = sub.add_parser("audit", help="the exchange's audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser(
        "verify", help="check the audit log's hash chain against the exchange's checkpoints"
    )
    verify.add_argument("--schema", default="exchange", help="the exchange's schema")
    verify.add_argument(
        "--keys",
        default=None,
        help="the exchange's public keys (JWKS): its /keys URL or a saved copy"
        " (default: the local exchange's /keys)",
    )
    verify.add_argument(
        "--unanchored",
        action="store_true",
        help="check the chain alone, without the checkpoints on Kafka (proves less)",
    )
    verify.set_defaults(func=cmd_audit_verify)
    backup = sub.add_parser("backup", help="every service's schema and its consumers' offsets")
    backup.add_argument("folder", help="a new folder for the backup")
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser(
        "restore", help="a backup into an empty database; consumers rewound to it"
    )
    restore.add_argument("folder", help="the backup's folder")
    restore.set_defaults(func=cmd_restore)
    dlq = sub.add_parser("dlq", help="dead letters: count, show, replay")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_list = dlq_sub.add_parser("list", help="dead letters by topic and reason")
    dlq_list.add_argument("topic", nargs="?", help="one dead-letter topic (default: all)")
    dlq_list.set_defaults(func=cmd_dlq_list)
    dlq_show = dlq_sub.add_parser("show", help="one dead letter and its original bytes")
    dlq_show.add_argument("topic")
    dlq_show.add_argument("offset", type=int)
    dlq_show.add_argument("--partition", type=int, default=0)
    dlq_show.set_defaults(func=cmd_dlq_show)
    dlq_replay = dlq_sub.add_parser("replay", help="send the originals back to their topic")
    dlq_replay.add_argument("topic")
    dlq_replay.add_argument("--reason", help="only letters whose reason contains this")
    dlq_replay.add_argument(
        "--since", help="only letters dead-lettered at this time or later (ISO 8601)"
    )
    dlq_replay.set_defaults(func=cmd_dlq_replay)
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
