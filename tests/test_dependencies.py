"""Every third-party module the code imports is a pinned, declared dependency.

A module that arrives only through another package (oslo.utils came with python-glanceclient)
works in the test venv and breaks a plain ``pip install .``. ``make install-check`` proves the
same with a real install and a running server; this test names the culprit in a second.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_TIME_SOURCES = ("imageservice", "images", "tasks", "importplugins", "manage.py")
FIRST_PARTY = frozenset({"imageservice", "images", "tasks", "importplugins", "tests"})
# Installed from tests/thirdparty_plugin by `make test`, as an operator would install a plugin.
THIRD_PARTY_PLUGIN = "checksum_note_plugin"
# Debian's Ceph bindings (python3-rados, python3-rbd): no PyPI distribution; `make
# ceph-bindings` links them into the venv.
SYSTEM_BINDINGS = frozenset({"rados", "rbd"})
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
TEST_EXTRA = PROJECT["optional-dependencies"]["test"]


def python_files(sources: Iterable[str]) -> list[Path]:
    paths = [ROOT / source for source in sources]
    return [file for path in paths for file in ([path] if path.is_file() else path.rglob("*.py"))]


def imported_modules(files: Iterable[Path]) -> dict[str, Path]:
    """Each absolutely imported top-level module name, with one file importing it."""
    modules: dict[str, Path] = {}
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                modules.setdefault(name.partition(".")[0], file.relative_to(ROOT))
    return modules


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(requirements: Iterable[str]) -> set[str]:
    return {canonical(re.match(r"[A-Za-z0-9._-]+", line).group()) for line in requirements}


def undeclared_imports(files: Iterable[Path], requirements: Iterable[str]) -> dict[str, str]:
    """``{distribution: "file imports module"}`` for each third-party import not declared."""
    distributions = importlib.metadata.packages_distributions()
    allowed = declared(requirements)
    missing = {}
    for module, file in imported_modules(files).items():
        known = FIRST_PARTY | SYSTEM_BINDINGS | {THIRD_PARTY_PLUGIN}
        if module in sys.stdlib_module_names or module in known:
            continue
        for distribution in distributions.get(module, [f"<no distribution for {module}>"]):
            if canonical(distribution) not in allowed:
                missing[distribution] = f"{file} imports {module}"
    return missing


def test_run_time_imports_are_project_dependencies():
    files = python_files(RUN_TIME_SOURCES)

    assert undeclared_imports(files, PROJECT["dependencies"]) == {}


def test_test_imports_are_dependencies_or_in_the_test_extra():
    files = python_files(["tests"])

    assert undeclared_imports(files, PROJECT["dependencies"] + TEST_EXTRA) == {}


def test_every_dependency_is_pinned_to_one_version():
    requirements = PROJECT["dependencies"] + TEST_EXTRA

    assert [line for line in requirements if "==" not in line] == []
