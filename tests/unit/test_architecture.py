"""The layers of docs/architecture.md, checked on the source: who may import whom, and who may
open a transaction. Each test reads every module's syntax tree, so a new module is covered the
day it is added."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import cleanup_core

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "cleanup_core"
DASHBOARD = ROOT / "tender_dashboard_reflex"
STORAGE = CORE / "storage"

# SQLAlchemy's query-building API: only the storage package writes SQL.
QUERY_API = frozenset(
    {
        "select",
        "insert",
        "update",
        "delete",
        "func",
        "text",
        "exists",
        "and_",
        "or_",
        "not_",
        "case",
        "cast",
        "literal",
        "literal_column",
        "bindparam",
        "true",
        "false",
        "null",
        "column",
        "table",
        "tuple_",
        "union",
        "union_all",
        "join",
        "outerjoin",
        "distinct",
        "Select",
    }
)
QUERY_MODULES = ("sqlalchemy.sql", "sqlalchemy.orm", "sqlalchemy.dialects", "sqlalchemy.future")

# Modules that present, loop or plan: they call the service, never storage or a transaction.
CALLERS = (
    CORE / "cli.py",
    CORE / "reports.py",
    CORE / "metrics.py",
    CORE / "tracker.py",
    CORE / "alerts.py",
    CORE / "demo.py",
    CORE / "launcher.py",
    CORE / "launch_wrapper.py",
    CORE / "integrations",
    DASHBOARD,
)
# What the rules may import from this project: other pure modules only.
PURE = frozenset(
    {
        "cleanup_core.checkpoints",
        "cleanup_core.config",
        "cleanup_core.errors",
        "cleanup_core.numbers",
        "cleanup_core.records",
        "cleanup_core.stalls",
        "cleanup_core.timestamps",
        "cleanup_core.vocabulary",
    }
)
HEAVY = frozenset({"alembic", "apprise", "click", "rich", "sqlalchemy", "sqlmodel", "reflex"})


def modules(*places: Path) -> Iterator[Path]:
    for place in places:
        yield from sorted(place.rglob("*.py")) if place.is_dir() else [place]


def imports(path: Path) -> Iterator[tuple[str, str | None, int]]:
    """(module, name imported from it or None, line) for every import in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield node.module, alias.name, node.lineno


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_only_the_storage_package_builds_sql() -> None:
    found = []
    for path in modules(CORE, DASHBOARD):
        if STORAGE in path.parents:
            continue
        for module, name, line in imports(path):
            if module == "sqlalchemy" and (name is None or name in QUERY_API):
                found.append(f"{where(path, line)} imports {name or module}")
            elif module.startswith(QUERY_MODULES):
                found.append(f"{where(path, line)} imports from {module}")
    assert found == []


def test_the_core_never_imports_the_dashboard() -> None:
    found = [
        f"{where(path, line)} imports {module}"
        for path in modules(CORE)
        for module, _, line in imports(path)
        if module.split(".")[0] in ("reflex", "tender_dashboard_reflex")
    ]
    assert found == []


def _transactions(path: Path) -> Iterator[int]:
    """Lines where ``path`` opens a transaction itself: ``<...>.db.read()`` / ``.write()``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("read", "write")
            and (
                (isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "db")
                or (isinstance(node.func.value, ast.Name) and node.func.value.id == "db")
            )
        ):
            yield node.lineno


def test_presenters_and_loops_go_through_the_service() -> None:
    found = []
    for path in modules(*CALLERS):
        found += [
            f"{where(path, line)} imports {module}"
            for module, _, line in imports(path)
            if module == "cleanup_core.storage" or module.startswith("cleanup_core.storage.")
        ]
        found += [f"{where(path, line)} opens a transaction" for line in _transactions(path)]
    assert found == []


def test_the_transactions_are_opened_by_the_service_only() -> None:
    """Besides the service, only the account use cases own transactions."""
    owners = {CORE / "accounts.py", *modules(CORE / "service")}
    found = [
        where(path, line)
        for path in modules(CORE, DASHBOARD)
        if path not in owners
        for line in _transactions(path)
    ]
    assert found == []


def test_the_rules_are_pure() -> None:
    own = {
        module
        for module, _, _ in imports(CORE / "classify.py")
        if module.split(".")[0] == "cleanup_core"
    }
    assert own <= PURE, own - PURE
    third_party = {
        module.split(".")[0]
        for module, _, _ in imports(CORE / "classify.py")
        if module.split(".")[0] not in ("cleanup_core", "__future__")
        and module.split(".")[0] not in sys.stdlib_module_names
    }
    assert third_party == set()


@pytest.mark.parametrize("module", ["cleanup_core", "cleanup_core.classify"])
def test_importing_the_rules_loads_nothing_heavy(module: str) -> None:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    top = {name.split(".")[0] for name in json.loads(loaded)}
    assert top & HEAVY == set()


def test_every_public_name_resolves() -> None:
    for name in cleanup_core.__all__:
        assert getattr(cleanup_core, name) is not None, name
    with pytest.raises(AttributeError):
        cleanup_core.no_such_name  # noqa: B018 - the lookup is what is tested
