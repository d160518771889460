"""The dependency floors in pyproject.toml: each names a lower bound, and none admits a release the code
cannot run on or one with a known advisory. CI installs exactly the floors and runs a smoke subset on
them (`.ci/run`, step "floors"); these checks keep a later edit from lowering one by mistake."""

from __future__ import annotations

import importlib.util

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.dependencies import EXCLUDED, ROOT, runtime_requirements


def test_every_runtime_dependency_names_a_floor() -> None:
    for name, requirement in runtime_requirements().items():
        operators = {spec.operator for spec in requirement.specifier}
        assert operators & {">=", "=="}, f"{name} has no lower bound: {requirement}"


@pytest.mark.parametrize(("name", "release", "why"), EXCLUDED, ids=[f"{n}-{r}" for n, r, _ in EXCLUDED])
def test_the_floor_excludes(name: str, release: str, why: str) -> None:
    requirement = runtime_requirements()[name]
    assert not requirement.specifier.contains(release, prereleases=True), (
        f"{requirement} admits {release}: {why}"
    )


def test_the_floors_check_finds_each_floor() -> None:
    """.ci/floors.py compares the floors venv with pyproject.toml: it reads a floor from every line."""
    spec = importlib.util.spec_from_file_location("floors", ROOT / ".ci" / "floors.py")
    assert spec is not None and spec.loader is not None
    floors = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(floors)
    assert floors.floor(Requirement("litestar>=2.23,<3")) == Version("2.23")
    assert floors.floor(Requirement("opentelemetry-instrumentation-asgi==0.66b1")) == Version("0.66b1")
    assert floors.floor(Requirement("anything<3")) is None
    for name, requirement in runtime_requirements().items():
        assert floors.floor(requirement) is not None, name
