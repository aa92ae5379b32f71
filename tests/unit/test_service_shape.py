"""Every service has the same shape, and each layer keeps to its kind of code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("identity", "catalog", "exchange", "metrics")
# Each is a module or a package of the same name.
LAYERS = ("domain", "use_cases", "handlers", "storage", "http", "bootstrap", "settings")
# What the pure layers may not reach: the broker, the database, HTTP, other processes.
NOT_IN_PURE_LAYERS = ("asyncpg", "aiokafka", "faust", "fastapi", "starlette", "shared.db")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(service: str, layer: str | None = None) -> list[Path]:
    root = REPO / "services" / service
    if layer is None:
        return sorted(root.rglob("*.py"))
    package = root / layer
    return sorted(package.rglob("*.py")) if package.is_dir() else [root / f"{layer}.py"]


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_layers_and_a_readme(service: str) -> None:
    root = REPO / "services" / service
    missing = [
        layer
        for layer in LAYERS
        if not (root / f"{layer}.py").is_file() and not (root / layer).is_dir()
    ]
    assert missing == []
    assert (root / "README.md").is_file()


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another_service_or_the_platform_around_it(service: str) -> None:
    others = tuple(f"services.{other}" for other in SERVICES if other != service)
    outside = ("panjereh_agency", "clients", "simulator", "infra", "benchmarks", "tests")
    found = {
        (path.relative_to(REPO).as_posix(), name)
        for path in modules(service)
        for name in imported(path)
        if name.startswith(others) or name.split(".")[0] in outside
    }
    assert found == set()


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("layer", ["domain", "use_cases"])
def test_domain_and_use_cases_do_no_io_of_their_own(service: str, layer: str) -> None:
    found = {
        (path.relative_to(REPO).as_posix(), name)
        for path in modules(service, layer)
        for name in imported(path)
        if any(name == banned or name.startswith(banned + ".") for banned in NOT_IN_PURE_LAYERS)
    }
    assert found == set()
