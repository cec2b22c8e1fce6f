"""Print pyproject.toml's runtime dependencies as a pip requirements file.

docker/Dockerfile installs these in a layer of their own, before it copies the sources, so a
code change does not reinstall torch and every dependency. Standard library only: it runs
before anything is installed.

    python docker/requirements_from_pyproject.py pyproject.toml [EXTRA ...] > requirements.txt
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    try:
        project = tomllib.loads(pyproject.read_text()).get("project")
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{pyproject}: not valid TOML: {error}") from None
    if not isinstance(project, dict):
        raise ValueError(f"{pyproject}: no [project] table")
    lines = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise ValueError(
                f"{pyproject}: no optional dependency group {extra!r} "
                f"(known: {', '.join(sorted(optional)) or 'none'})"
            )
        lines.extend(optional[extra])
    return lines


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: requirements_from_pyproject.py PYPROJECT [EXTRA ...]", file=sys.stderr)
        return 2
    extras = [e for arg in argv[1:] for e in arg.replace(",", " ").split()]
    try:
        lines = requirements(Path(argv[0]), extras)
    except (OSError, ValueError) as error:
        print(f"requirements_from_pyproject: {error}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
