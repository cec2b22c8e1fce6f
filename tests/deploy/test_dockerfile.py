"""docker/Dockerfile read as text (no Docker engine here): layer order, the CUDA 13 torch pins
against pyproject.toml, a non-root user, volumes; the requirements it derives; and the
dependencies pyproject.toml declares against what the code imports."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from cli_invocations import REPO

DOCKERFILE = REPO / "docker" / "Dockerfile"
DERIVE = REPO / "docker" / "requirements_from_pyproject.py"
CUDA13_DRIVER = "580.65.06"  # NVIDIA's CUDA 13.0 release notes, minimum Linux driver


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def pin(name: str) -> str:
    pins = [d for d in pyproject()["dependencies"] if re.match(rf"{name}\s*==", d)]
    assert len(pins) == 1, f"pyproject.toml must pin {name} exactly once"
    return pins[0].split("==")[1].strip()


def index_of(steps: list[tuple[str, str]], keyword: str, pattern: str) -> int:
    matches = [i for i, (k, a) in enumerate(steps) if k == keyword and re.search(pattern, a)]
    assert matches, f"Dockerfile: no {keyword} matching {pattern!r}"
    return matches[0]


def test_torch_is_the_cu130_build_of_pyprojects_pins():
    args = dict(a.split("=", 1) for k, a in instructions() if k == "ARG" and "=" in a)
    assert args["TORCH_VERSION"] == pin("torch")
    assert args["TORCHVISION_VERSION"] == pin("torchvision")
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cu130"
    text = DOCKERFILE.read_text()
    assert "torch.version.cuda" in text and "startswith('13.')" in text  # checked at build
    for document in (DOCKERFILE, REPO / "deploy" / "README.md"):
        assert CUDA13_DRIVER in document.read_text(), f"{document.name}: say the driver minimum"


def test_dependencies_are_installed_before_the_sources_are_copied():
    steps = instructions()
    torch_layer = index_of(steps, "RUN", r"pip install --index-url .*torch==")
    copy_pyproject = index_of(steps, "COPY", r"pyproject\.toml .*requirements_from_pyproject")
    install_deps = index_of(steps, "RUN", r"pip install -r ")
    copy_sources = min(
        index_of(steps, "COPY", r"^nat_core "), index_of(steps, "COPY", r"^autonat_search ")
    )
    install_project = index_of(steps, "RUN", r"pip install --no-deps ")
    assert torch_layer < copy_pyproject < install_deps < copy_sources < install_project
    # Nothing before the dependency layer copies anything but pyproject.toml and the script.
    early_copies = [a for k, a in steps[:install_deps] if k == "COPY"]
    assert early_copies == ["pyproject.toml docker/requirements_from_pyproject.py /tmp/deps/"]


def test_runs_as_a_non_root_user_with_volumes():
    steps = instructions()
    users = [a for k, a in steps if k == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must end as a non-root user"
    volumes = [a for k, a in steps if k == "VOLUME"]
    assert volumes == ['["/app/assets", "/app/artifacts"]']
    assert [a for k, a in steps if k == "WORKDIR"] == ["/app"]


def test_copied_paths_exist_and_are_not_docker_ignored():
    ignored = set((REPO / ".dockerignore").read_text().split())
    for keyword, args in instructions():
        if keyword != "COPY" or args.startswith("--from"):
            continue
        for source in args.split()[:-1]:
            assert (REPO / source).exists(), f"Dockerfile copies {source}, which is missing"
            assert Path(source).parts[0] not in ignored, f".dockerignore excludes {source}"


def derive(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DERIVE), *args], capture_output=True, text=True, timeout=60
    )


def test_requirements_are_pyprojects_dependencies():
    project = pyproject()
    result = derive(str(REPO / "pyproject.toml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == project["dependencies"]
    result = derive(str(REPO / "pyproject.toml"), "xformers")
    assert result.stdout.splitlines() == [
        *project["dependencies"],
        *project["optional-dependencies"]["xformers"],
    ]


def test_requirements_script_names_a_bad_extra(tmp_path):
    result = derive(str(REPO / "pyproject.toml"), "no-such-extra")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    known = ", ".join(sorted(pyproject()["optional-dependencies"]))
    assert "'no-such-extra'" in result.stderr and f"known: {known}" in result.stderr
    broken = tmp_path / "pyproject.toml"
    broken.write_text("[project\n")
    result = derive(str(broken))
    assert result.returncode == 1 and str(broken) in result.stderr


def imported_modules() -> set[str]:
    names = set()
    for package in ("autonat_search", "nat_core"):
        for path in (REPO / package).rglob("*.py"):
            for match in re.finditer(
                r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", path.read_text(), re.M
            ):
                names.add(match.group(1) or match.group(2))
    return names


def test_ray_extras_match_what_the_code_imports():
    """`ray[tune]` only if something imports ray.tune; otherwise `ray[default]`."""
    ray_pins = [d for d in pyproject()["dependencies"] if d.startswith("ray")]
    assert len(ray_pins) == 1
    modules = imported_modules()
    uses_tune = any(name == "ray.tune" or name.startswith("ray.tune.") for name in modules)
    expected = "ray[tune]" if uses_tune else "ray[default]"
    usage = "imports" if uses_tune else "never imports"
    assert ray_pins[0].startswith(expected + "=="), (
        f"pyproject.toml has {ray_pins[0]}, but the code {usage} ray.tune"
    )
    assert "ray" in {name.split(".")[0] for name in modules}


# Distribution name -> the module the code imports, where they differ.
IMPORT_NAMES = {
    "Pillow": "PIL",
    "PyYAML": "yaml",
    "scikit-learn": "sklearn",
    "optuna-dashboard": "optuna_dashboard",
    "SQLAlchemy": "sqlalchemy",
    "pytorch-fid": "pytorch_fid",
}
# Used through another dependency, never imported by name.
INDIRECT = {
    "psycopg2-binary": "SQLAlchemy's driver for postgresql+psycopg2:// URLs",
    "pandas": "Optuna's trials_dataframe (export-trials)",
    "cmaes": "Optuna's CmaEsSampler (sampler: cmaes)",
}


def test_every_dependency_is_imported_or_used_through_another():
    """No dependency that nothing uses (each one is installed into every worker image)."""
    roots = {name.split(".")[0] for name in imported_modules()}
    unused = []
    for requirement in pyproject()["dependencies"]:
        name = re.split(r"[\s\[=<>~!;]", requirement, maxsplit=1)[0]
        if name in INDIRECT:
            continue
        if IMPORT_NAMES.get(name, name).replace("-", "_") not in roots:
            unused.append(requirement)
    assert not unused, f"dependencies nothing imports: {unused}"
