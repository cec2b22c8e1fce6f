"""nat_core stands alone: no module imports the service or its dependencies, and
``import nat_core`` (or its torch-free modules) stays light."""

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import nat_core

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE_MODULES = ("autonat_search", "optuna", "ray", "sqlalchemy", "typer")


def _loaded_after(code: str) -> set[str]:
    """Top-level package names loaded by ``code`` in a fresh interpreter."""
    script = (
        f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return set(proc.stdout.split())


def test_no_nat_core_module_imports_the_service():
    modules = sorted(
        info.name
        for info in pkgutil.walk_packages(nat_core.__path__, "nat_core.")
        if not info.name.endswith("__main__")
    )
    assert {"nat_core.fid.distance", "nat_core.train.loop", "nat_core.digits.build"} <= set(modules)
    loaded = _loaded_after(
        "\n".join(f"import {name}" for name in [*modules, "nat_core.train.__main__"])
    )
    assert "nat_core" in loaded and "torch" in loaded
    assert loaded.isdisjoint(SERVICE_MODULES), sorted(loaded & set(SERVICE_MODULES))


def test_import_nat_core_is_lazy_and_its_names_resolve():
    assert "torch" not in _loaded_after("import nat_core, nat_core.schema, nat_core.seeding")
    for name in nat_core.__all__:
        assert getattr(nat_core, name) is not None, name
    assert set(nat_core.__all__) <= set(dir(nat_core))
