"""deploy/constraints.txt, the versions the image installs: made for the image's Python, pinning every
runtime dependency inside pyproject.toml's range and never at a release the floors exclude."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from tests.dependencies import EXCLUDED, runtime_requirements

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def image_python() -> str:
    found = re.search(r"^FROM python:(\d+\.\d+)-slim\b", (DEPLOY / "Dockerfile").read_text(), re.M)
    assert found, "deploy/Dockerfile does not start from a python:X.Y-slim image"
    return found.group(1)


def image_environment() -> dict[str, str]:
    python = image_python()
    return {
        "python_version": python,
        "python_full_version": f"{python}.99",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_python_implementation": "CPython",
        "implementation_name": "cpython",
    }


def pins() -> dict[str, Version]:
    """The constraints that apply inside the image, by normalised name."""
    environment = image_environment()
    pinned: dict[str, Version] = {}
    for line in (DEPLOY / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        [spec] = requirement.specifier
        assert spec.operator == "==", f"constraints.txt: {line} is not an exact pin"
        pinned[requirement.name.lower().replace("_", "-")] = Version(spec.version)
    return pinned


def test_the_image_installs_from_the_constraints() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^COPY deploy/constraints\.txt \./deploy/$", dockerfile, re.M)
    assert re.search(r"^RUN pip install --constraint deploy/constraints\.txt \.", dockerfile, re.M)


def test_the_constraints_were_made_for_the_images_python() -> None:
    header = (DEPLOY / "constraints.txt").read_text().split("\n", 3)[:3]
    assert any(f"--python-version {image_python()}" in line for line in header), (
        "deploy/constraints.txt was made for another Python than deploy/Dockerfile's: run `just constraints`"
    )


def test_every_runtime_dependency_is_pinned_inside_its_range() -> None:
    pinned = pins()
    environment = image_environment()
    for name, requirement in runtime_requirements().items():
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        version = pinned.get(name.lower())
        assert version is not None, f"{name} is not pinned in deploy/constraints.txt: run `just constraints`"
        assert requirement.specifier.contains(version, prereleases=True), (
            f"deploy/constraints.txt pins {name}=={version}, outside {requirement}: run `just constraints`"
        )


def test_no_pin_is_a_release_the_floors_exclude() -> None:
    pinned = pins()
    for name, release, why in EXCLUDED:
        assert pinned.get(name) != Version(release), f"deploy/constraints.txt pins {name}=={release}: {why}"
