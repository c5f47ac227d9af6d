"""Boundaries are enforced, not hoped for: layer contracts (import-linter) and domain public faces."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from cityhub.domains import INSTALLED, manifests

SRC = Path(__file__).resolve().parents[2] / "src" / "cityhub"
FILE_ROLES = (
    "__init__.py",
    "manifest.py",
    "models.py",
    "schemas.py",
    "api.py",
    "views.py",
    "cli.py",
    "demo.py",
)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def test_import_linter_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports)], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("domain", INSTALLED)
def test_domain_imports_other_domains_only_through_declared_public_faces(domain: str) -> None:
    declared = set(next(m for m in manifests() if m.name == domain).depends_on)
    for path in (SRC / "domains" / domain).rglob("*.py"):
        for module in _imports(path):
            parts = module.split(".")
            if parts[:2] != ["cityhub", "domains"] or len(parts) < 3 or parts[2] == domain:
                continue
            other = parts[2]
            assert other in INSTALLED, f"{path}: imports unknown domain module {module}"
            assert other in declared, f"{path}: imports {other} without declaring it in depends_on"
            is_public_face = len(parts) == 3 or (len(parts) == 4 and parts[3] in _public_names(other))
            assert is_public_face, f"{path}: imports {module}; use cityhub.domains.{other} (its __init__)"


def _public_names(domain: str) -> set[str]:
    module = __import__(f"cityhub.domains.{domain}", fromlist=["__all__"])
    return set(module.__all__)


@pytest.mark.parametrize("domain", INSTALLED)
def test_domain_has_the_standard_file_roles_and_an_explicit_public_face(domain: str) -> None:
    package = SRC / "domains" / domain
    missing = [role for role in FILE_ROLES if not (package / role).exists()]
    assert not missing, f"domain {domain} lacks {missing}"
    assert _public_names(domain), f"cityhub.domains.{domain} must declare __all__"


def test_domain_tables_are_prefixed_with_the_domain_name() -> None:
    from cityhub.domains import load_models
    from cityhub.kernel.db import Base

    load_models()
    allowed = {*INSTALLED, "kernel"}
    for table in Base.metadata.tables:
        assert table.split("_")[0] in allowed, f"table {table} lacks a domain prefix"
