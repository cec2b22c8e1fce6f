"""Installable anywhere: a clean clone, installed non-editably into a fresh virtualenv outside
the repository, runs ``autonat-search demo`` from another folder (the demo's study and bundle
ship as package data)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml
from cli_invocations import REPO


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
@pytest.mark.ray  # the demo subprocess
def test_a_clean_clone_installs_and_runs_the_demo_from_elsewhere(tmp_path):
    # Only this process's interpreter and PATH: no PYTHONPATH pointing at a checkout.
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "RAY_USAGE_STATS_ENABLED": "0"}
    clone = tmp_path / "clone"
    _run(["git", "clone", "--quiet", str(REPO), str(clone)], tmp_path, env)

    # A fresh virtualenv that sees this interpreter's site-packages through a path file (a
    # plain path: that folder's own .pth files, e.g. an editable install of the checkout, are
    # not processed). pip resolves the project's dependencies there and finds them satisfied,
    # so only the project itself is installed, without downloading torch again.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    python = venv / "bin" / "python"
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            tmp_path,
            env,
        ).stdout.strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-build-isolation",
            str(clone),
        ],
        tmp_path,
        env,
    )

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run(
        [
            str(python),
            "-c",
            "import autonat_search, nat_core; "
            "print(autonat_search.__file__); print(nat_core.__file__)",
        ],
        elsewhere,
        env,
    ).stdout.split()
    assert all(path.startswith(str(site)) for path in where), where
    installed = sorted(p.name for p in site.iterdir() if p.name.endswith(".dist-info"))
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert installed == [f"autonat_search-{version}.dist-info"], installed  # nothing else

    result = _run(
        [str(venv / "bin" / "autonat-search"), "demo", "--trials", "3", "--cpu-actors", "1"],
        elsewhere,
        env,
    )
    assert "3 of 3 trials finished" in result.stdout, result.stdout
    assert "reference initial schedule: FID@" in result.stdout
    # The default run folder is ./runs of the folder the user is in.
    (run_dir,) = (elsewhere / "runs").glob("demo-*")
    exported = yaml.safe_load((run_dir / "best_strategy.yaml").read_text())
    assert sorted(exported) == ["manual_cfg", "manual_ratios", "manual_samp_temp", "manual_temp"]
    # The study ran on the installed bundle, not on a checkout's.
    assert str(clone) not in result.stdout and str(REPO) not in result.stdout


def test_the_checkout_links_to_the_packaged_demo_files():
    """One copy of the demo's files: studies/ and bundles/ of a checkout point into the package."""
    data = REPO / "autonat_search" / "demo_data"
    links = {
        REPO / "studies" / "digits_demo.yaml": data / "studies" / "digits_demo.yaml",
        REPO / "bundles" / "digits_demo.yaml": data / "bundles" / "digits_demo.yaml",
        REPO / "bundles" / "digits_demo": data / "bundles" / "digits_demo",
    }
    for link, target in links.items():
        assert link.is_symlink() and link.resolve() == target.resolve(), link
    study = yaml.safe_load((data / "studies" / "digits_demo.yaml").read_text())
    assert (data / "studies" / study["bundle"]).resolve() == (
        data / "bundles" / "digits_demo.yaml"
    ).resolve()
