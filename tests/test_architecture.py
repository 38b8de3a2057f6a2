"""The import-linter contract of pyproject.toml holds, and would catch a base module importing up.

Both tests run the venv's real ``lint-imports`` (beside ``sys.executable``), so the suite
fails the moment an import goes the wrong way; docs/architecture.md explains the layers.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _root_packages() -> list[str]:
    config = tomllib.loads(CONFIG.read_text())
    return config["tool"]["importlinter"]["root_packages"]


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the packages under ``tree``, with the repository's contract.

    lint-imports puts its working directory first on the import path, so the packages
    found are the tree's, not an installed copy."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(CONFIG)],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_repository_keeps_every_import_contract():
    done = _lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_base_module_importing_features_breaks_the_contract(tmp_path):
    for package in _root_packages():
        shutil.copytree(
            REPO / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    errors = tmp_path / "churnml" / "errors.py"
    errors.write_text(errors.read_text() + "\nimport features\n")

    done = _lint_imports(tmp_path)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "Base modules import no other package BROKEN" in done.stdout
    assert "churnml.errors is not allowed to import features" in done.stdout
