"""Run in a venv that `uv pip install --resolution lowest-direct` filled: every direct dependency must be
installed at exactly its floor in pyproject.toml. A dependency found higher means its floor cannot be
installed with the others (another package needs more), so the floor claims what nobody tested.

usage: python .ci/floors.py [EXTRA ...]   (the extras whose requirements count too, e.g. `test`)
"""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def floor(requirement: Requirement) -> Version | None:
    """The lowest version the requirement admits, when it names one."""
    lows = [Version(spec.version) for spec in requirement.specifier if spec.operator in (">=", "==", "~=")]
    return max(lows, default=None)


def problems(extras: list[str]) -> list[str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    found = []
    for line in lines:
        requirement = Requirement(line)
        if requirement.name == project["name"]:
            continue  # one extra including another
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        low = floor(requirement)
        if low is None:
            found.append(f"{requirement.name}: no floor in pyproject.toml")
            continue
        try:
            installed = Version(version(requirement.name))
        except PackageNotFoundError:
            found.append(f"{requirement.name}: not installed")
            continue
        if installed != low:
            found.append(f"{requirement.name}: floor {low}, but the lowest resolution installed {installed}")
        else:
            print(f"  {requirement.name} {installed}")
    return found


def main() -> int:
    found = problems(sys.argv[1:])
    for problem in found:
        print(f"floors: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
