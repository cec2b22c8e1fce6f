"""The compose files, rendered by docker-compose (Debian's package) with a planted .env:
real commands, existing mounts, nothing published on every interface, secrets only in the
containers' environment."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_invocations import (
    EXPECTED_COMMANDS,
    REPO,
    SCRIPT_NAME,
    Invocation,
    check_invocation,
    invocations_in_text,
    invocations_in_tokens,
)
from sqlalchemy.engine import make_url

PASSWORD = f"planted-pg-{uuid.uuid4().hex}"
RAY_TOKEN = f"planted-ray-{uuid.uuid4().hex}"
SECRETS = (PASSWORD, RAY_TOKEN)
BASE_ENV = {"POSTGRES_PASSWORD": PASSWORD, "RAY_AUTH_TOKEN": RAY_TOKEN, "STUDY": "autonat-l-t8"}
PRIVATE_IP = "10.11.12.13"
# Each way the files are used (deploy/README.md): compose arguments and the .env for it.
VARIANTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "one-box": (["-f", "docker-compose.yml"], BASE_ENV),
    "publish-db": (["-f", "docker-compose.yml", "-f", "docker/compose.publish-db.yml"], BASE_ENV),
    "cluster-head": (
        ["-f", "docker-compose.yml", "-f", "docker/compose.cluster-head.yml"],
        {**BASE_ENV, "POSTGRES_BIND": PRIVATE_IP, "RAY_HEAD_IP": PRIVATE_IP},
    ),
    "worker-node": (
        ["--project-directory", ".", "-f", "docker/compose.worker-node.yml"],
        {**BASE_ENV, "AUTONAT_DB_HOST": PRIVATE_IP, "RAY_HEAD_ADDRESS": f"{PRIVATE_IP}:6379"},
    ),
}
# Host folders the compose files mount that a checkout does not have: they are git-ignored
# and created by a documented step.
CREATED_BY_DOCS = {"assets": "mkdir -p assets artifacts", "artifacts": "mkdir -p assets artifacts"}
ALL_INTERFACES = {"", "0.0.0.0", "::", "[::]"}


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.fail(
            "docker-compose is not installed; the deployment tests validate the compose files "
            "with it: apt-get install -y docker-compose"
        )
    return path


def compose_config(
    args: list[str], env: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / f"env-{uuid.uuid4().hex}"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    # A clean process environment: only the planted .env may supply variables.
    return subprocess.run(
        [docker_compose(), "--env-file", str(env_file), *args, "config"],
        cwd=REPO,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def render(variant: str, tmp_path: Path, **extra_env: str) -> dict[str, Any]:
    args, env = VARIANTS[variant]
    result = compose_config(args, {**env, **extra_env}, tmp_path)
    assert result.returncode == 0, f"docker-compose config ({variant}): {result.stderr}"
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def rendered(request, tmp_path_factory) -> tuple[str, dict[str, Any]]:
    return request.param, render(request.param, tmp_path_factory.mktemp("compose"))


def command_tokens(service: dict[str, Any]) -> list[str]:
    """The service's command and entrypoint as words; a ``sh -c SCRIPT`` is split too."""
    tokens: list[str] = []
    for key in ("entrypoint", "command"):
        value = service.get(key) or []
        words = value.split() if isinstance(value, str) else [str(v) for v in value]
        if len(words) >= 3 and words[0] in ("sh", "bash") and words[1] == "-c":
            words = [*words[:2], *shlex.split(words[2])]
        tokens.extend(words)
    return tokens


def invocations(config: dict[str, Any]) -> Iterator[tuple[str, Invocation]]:
    for name, service in config["services"].items():
        for invocation in invocations_in_tokens(command_tokens(service), f"service {name}"):
            yield name, invocation


def walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, str(index)))
    else:
        yield path, str(node)


def test_expected_services(rendered):
    variant, config = rendered
    expected = (
        {"worker"}
        if variant == "worker-node"
        else {"postgres", "dashboard", "ray-head", "worker", "cli"}
    )
    assert set(config["services"]) == expected


def test_expected_commands_exist(autonat_cli):
    missing = [c for c in EXPECTED_COMMANDS if c not in autonat_cli.commands]
    assert not missing, f"{SCRIPT_NAME} lacks the command(s) the deployment runs: {missing}"


def test_every_command_is_real(rendered, autonat_cli, ray_cli):
    variant, config = rendered
    found = list(invocations(config))
    problems = [p for _, inv in found for p in check_invocation(inv, autonat_cli, ray_cli)]
    assert not problems, f"{variant}: " + "; ".join(problems)
    by_service = {(name, inv.program, inv.subcommand) for name, inv in found}
    assert ("worker", SCRIPT_NAME, "worker") in by_service
    assert ("worker", "ray", "start") in by_service
    if variant != "worker-node":
        assert ("dashboard", SCRIPT_NAME, "dashboard") in by_service
        assert ("ray-head", "ray", "start") in by_service


def test_documented_commands_are_real(autonat_cli, ray_cli):
    files = ["docker-compose.yml", *sorted(p.name for p in (REPO / "docker").glob("compose.*.yml"))]
    problems, count = [], 0
    for name in files:
        path = REPO / name if (REPO / name).exists() else REPO / "docker" / name
        for invocation in invocations_in_text(path.read_text(), name):
            count += 1
            problems.extend(check_invocation(invocation, autonat_cli, ray_cli))
    readme = REPO / "deploy" / "README.md"
    for invocation in invocations_in_text(readme.read_text(), "deploy/README.md", markdown=True):
        count += 1
        problems.extend(check_invocation(invocation, autonat_cli, ray_cli))
    assert count >= 10, f"found only {count} documented commands; is the parser broken?"
    assert not problems, "; ".join(problems)


def test_mounted_host_paths_exist(rendered):
    variant, config = rendered
    readme = (REPO / "deploy" / "README.md").read_text()
    for name, service in config["services"].items():
        build = service.get("build")
        if build:
            assert Path(build["context"]) == REPO, f"{variant} {name}: build context"
            assert (REPO / build["dockerfile"]).is_file()
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if not source.startswith("/"):
                assert source in config.get("volumes", {}), f"{name}: undeclared volume {source}"
                continue
            relative = Path(source).relative_to(REPO)  # outside the checkout: ValueError
            if (REPO / relative).exists():
                continue
            top = relative.parts[0]
            assert top in CREATED_BY_DOCS, f"{variant} {name}: {source} does not exist"
            assert CREATED_BY_DOCS[top] in readme, f"deploy/README.md must say how {top}/ is made"
            ignored = subprocess.run(["git", "check-ignore", "-q", f"{top}/"], cwd=REPO)
            assert ignored.returncode == 0, f"{top}/ is created locally and must be git-ignored"


def published(config: dict[str, Any]) -> dict[str, list[str]]:
    """Service -> host addresses it is published on."""
    hosts: dict[str, list[str]] = {}
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                hosts.setdefault(name, []).append(port.get("host_ip", ""))
            else:
                parts = str(port).split(":")
                hosts.setdefault(name, []).append(parts[0] if len(parts) == 3 else "")
    return hosts


def test_nothing_published_on_every_interface(rendered):
    variant, config = rendered
    hosts = published(config)
    for name, addresses in hosts.items():
        assert not set(addresses) & ALL_INTERFACES, f"{variant}: {name} on every interface"
    expected = {
        "one-box": {"dashboard": ["127.0.0.1"]},
        "publish-db": {"dashboard": ["127.0.0.1"], "postgres": ["127.0.0.1"]},
        "cluster-head": {"dashboard": ["127.0.0.1"], "postgres": [PRIVATE_IP]},
        "worker-node": {},
    }[variant]
    assert hosts == expected
    host_network = {n for n, s in config["services"].items() if s.get("network_mode") == "host"}
    assert (
        host_network
        == {
            "one-box": set(),
            "publish-db": set(),
            "cluster-head": {"ray-head", "worker"},
            "worker-node": {"worker"},
        }[variant]
    )


def test_dashboard_bind_address_is_a_setting(tmp_path):
    config = render("one-box", tmp_path, DASHBOARD_BIND="10.0.0.7", DASHBOARD_PORT="18080")
    assert published(config) == {"dashboard": ["10.0.0.7"]}
    assert "18080" in str(config["services"]["dashboard"]["ports"])


def test_secrets_only_in_the_environment(rendered):
    variant, config = rendered
    allowed = {"PGPASSWORD": PASSWORD, "POSTGRES_PASSWORD": PASSWORD, "RAY_AUTH_TOKEN": RAY_TOKEN}
    delivered = set()
    for path, value in walk(config):
        for secret in SECRETS:
            if secret not in value:
                continue
            where = ".".join(path)
            in_environment = len(path) == 4 and path[0] == "services" and path[2] == "environment"
            assert in_environment, f"{variant}: a secret at {where}"
            assert allowed.get(path[3]) == value, f"{variant}: {where} holds a secret"
            delivered.add((path[1], path[3]))
    # Not vacuous: every service that needs a secret gets it.
    services = config["services"]
    for name, service in services.items():
        if name == "postgres":
            assert (name, "POSTGRES_PASSWORD") in delivered
        elif "AUTONAT_STORAGE" in service.get("environment", {}):
            assert (name, "PGPASSWORD") in delivered, f"{variant}: {name} lacks PGPASSWORD"


def test_storage_url_has_no_password(rendered):
    variant, config = rendered
    urls = {
        name: service["environment"]["AUTONAT_STORAGE"]
        for name, service in config["services"].items()
        if "AUTONAT_STORAGE" in service.get("environment", {})
    }
    assert "worker" in urls
    for name, url in urls.items():
        parsed = make_url(url)
        assert parsed.drivername == "postgresql+psycopg2"
        assert parsed.password is None, f"{variant}: {name}'s storage URL carries a password"
        assert parsed.username == "autonat" and parsed.database == "autonat"
    host = {"cluster-head": PRIVATE_IP, "worker-node": PRIVATE_IP}.get(variant, "postgres")
    assert make_url(urls["worker"]).host == host


def test_ray_token_auth_on_every_ray_service(rendered):
    variant, config = rendered
    ray_services = {name for name, inv in invocations(config) if inv.program == "ray"}
    ray_services |= {
        name
        for name, inv in invocations(config)
        if inv.program == SCRIPT_NAME and inv.subcommand == "worker"
    }
    assert ray_services, variant
    for name in ray_services:
        environment = config["services"][name]["environment"]
        assert environment.get("RAY_AUTH_MODE") == "token", f"{variant}: {name}"
        assert environment.get("RAY_AUTH_TOKEN") == RAY_TOKEN, f"{variant}: {name}"
        assert config["services"][name].get("shm_size"), f"{variant}: {name} needs shm_size"


def test_worker_has_the_gpus_and_time_to_finish(rendered):
    variant, config = rendered
    worker = config["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert worker["stop_grace_period"] in ("15m", "15m0s")
    assert worker.get("init") is True  # signals reach the worker, zombies are reaped


def test_required_settings_fail_with_a_clear_message(tmp_path):
    example = dict(
        line.split("=", 1)
        for line in (REPO / "docker" / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert example["POSTGRES_PASSWORD"] == "" and example["RAY_AUTH_TOKEN"] == "", (
        "docker/env.example must not carry a usable secret"
    )
    result = compose_config(VARIANTS["one-box"][0], example, tmp_path)
    assert result.returncode != 0 and "set POSTGRES_PASSWORD in .env" in result.stderr
    result = compose_config(VARIANTS["worker-node"][0], BASE_ENV, tmp_path)
    assert result.returncode != 0 and "AUTONAT_DB_HOST" in result.stderr


def test_env_file_stays_out_of_git_and_the_image():
    assert subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO).returncode == 0
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".env", "assets", "artifacts", ".git", ".venv"} <= set(ignored)


def test_the_study_files_upload_artifacts_to_the_mounted_store(rendered):
    """In the image the study files are /app/studies/*.yaml: their artifact store must be the
    /app/artifacts volume that the workers write and the dashboard reads."""
    from autonat_search.config import parse_study_config

    for path in sorted((REPO / "studies").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        config = parse_study_config(data, source_dir=Path("/app/studies"))
        assert config.artifact_location() == "/app/artifacts", path.name
    variant, config = rendered
    for name in ("worker", "dashboard", "cli"):
        if name not in config["services"]:
            continue
        targets = [
            volume.split(":")[1] if isinstance(volume, str) else volume["target"]
            for volume in config["services"][name].get("volumes", [])
        ]
        assert "/app/artifacts" in targets, f"{variant} {name}: /app/artifacts not mounted"
