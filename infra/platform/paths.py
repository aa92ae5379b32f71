"""Where things live, relative to the repository root (never machine-specific paths)."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

#: The repository root, found from this file: infra/platform/paths.py -> ../../..
REPO_ROOT: Path = Path(__file__).resolve().parents[2]
INFRA_DIR: Path = REPO_ROOT / "infra"
KAFKA_POM: Path = INFRA_DIR / "kafka" / "pom.xml"
KAFKA_LOG_CONFIG: Path = INFRA_DIR / "kafka" / "log4j2.properties"
CACHE_DIR: Path = REPO_ROOT / ".cache"
#: The CLI's platform home unless PANJEREH_HOME says otherwise.
DEFAULT_HOME: Path = REPO_ROOT / ".data" / "dev"


@cache
def kafka_version() -> str:
    """The pinned Kafka release: the `<kafka.version>` property of infra/kafka/pom.xml."""
    match = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", KAFKA_POM.read_text())
    if match is None:
        raise RuntimeError(f"{KAFKA_POM} has no <kafka.version> property")
    return match.group(1)


def kafka_libs_dir() -> Path:
    """The cached classpath of the pinned Kafka release (filled by `mvn`)."""
    return CACHE_DIR / "kafka" / kafka_version() / "libs"


def default_home() -> Path:
    """The CLI's platform home: $PANJEREH_HOME, or .data/dev in the repository."""
    value = os.environ.get("PANJEREH_HOME")
    return Path(value).resolve() if value else DEFAULT_HOME
