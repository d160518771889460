"""The import contracts of pyproject.toml (`lint-imports`, run by `just lint`) hold on the tree, and each
one bites: a copy of the tree given one forbidden import fails, naming that contract and no other."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shopstream", "bus", "contexts", "observability")
CONTRACTS = {
    contract["id"]: contract["name"]
    for contract in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
}


def lint_imports(root: Path) -> tuple[int, str]:
    """Exit status and output (whitespace collapsed: long contract names wrap) of `lint-imports` on the
    packages under `root`."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--no-logo"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},  # the packages under root, not the installed ones
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, " ".join((done.stdout + done.stderr).split())


def verdicts(output: str) -> dict[str, str]:
    return {
        which: "BROKEN" if f"{name} BROKEN" in output else "KEPT" if f"{name} KEPT" in output else "?"
        for which, name in CONTRACTS.items()
    }


def test_the_tree_keeps_every_contract():
    status, output = lint_imports(ROOT)
    assert verdicts(output) == dict.fromkeys(CONTRACTS, "KEPT"), output
    assert status == 0


@pytest.mark.parametrize(
    ("module", "added", "contract", "reported"),
    [
        (
            "contexts/identity/repository.py",
            "from shopstream import settings",
            "layers",
            "contexts.identity.repository -> shopstream.settings",
        ),
        (
            "observability/metrics.py",
            "from shopstream import __version__",
            "layers",
            "observability.metrics -> shopstream",
        ),
        ("bus/outbox.py", "import contexts", "layers", "bus.outbox -> contexts"),
        (
            "contexts/catalogue/product.py",
            "from contexts.identity import values",
            "contexts",
            "contexts.catalogue.product -> contexts.identity.values",
        ),
        ("bus/uow.py", "from bus import repository", "acyclic", ".uow -> .repository"),
        ("shopstream/processes.py", "from shopstream import cli", "acyclic", ".processes -> .cli"),
        (
            "contexts/identity/customer.py",
            "import asyncpg",
            "pure-domain",
            "contexts.identity.customer -> asyncpg",
        ),
        ("bus/consumer.py", "import litestar", "bus-without-http", "bus.consumer -> litestar"),
        (
            "contexts/catalogue/queries.py",
            "import redis",
            "redis-via-bus",
            "contexts.catalogue.queries -> redis",
        ),
    ],
)
def test_one_forbidden_import_breaks_its_contract(tmp_path, module, added, contract, reported):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / module).open("a") as source:
        source.write(f"\n{added}  # noqa\n")

    status, output = lint_imports(tmp_path)

    assert status != 0
    assert verdicts(output) == {which: "BROKEN" if which == contract else "KEPT" for which in CONTRACTS}, (
        output
    )
    assert reported in output
