"""The Celery deployment: docker-compose.yaml and the Dockerfile agree with each other and with the project.

Structure is checked from the parsed YAML, so these tests need neither Docker nor a network. The last test
also lets a compose binary validate the file when one is installed (it needs no running engine for that).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from matomo_posthog.cli import build_parser
from matomo_posthog.config import load_config

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"

IMAGE = "matomo-posthog-airflow:latest"
AIRFLOW_SERVICES = {
    "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker", "airflow-triggerer",
    "airflow-init", "airflow-cli", "flower",
}
CORE_SERVICES = {"postgres", "redis"} | AIRFLOW_SERVICES - {"airflow-cli", "flower"}
EMULATORS = {"matomo-emulator", "posthog-emulator"}
MOUNTED = ("dags", "logs", "config", "plugins", "include")

# ${NAME}, ${NAME:-default} or ${NAME-default}; "$${...}" is compose's escape for a literal "$" and no variable.
VARIABLE = re.compile(r"(?<!\$)\$\{(\w+)(?:(:?-)([^}]*))?\}")


def default(value: str) -> str:
    """``value`` as compose renders it when no variable is set."""
    return VARIABLE.sub(lambda match: match.group(3) or "", value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def common_env(compose) -> dict:
    return compose["x-airflow-common"]["environment"]


def argv(service: dict) -> list[str]:
    """The command line a service runs: entrypoint then command, each a list or a string."""
    parts = []
    for key in ("entrypoint", "command"):
        value = service.get(key) or []
        parts += value.split() if isinstance(value, str) else list(value)
    return parts


def test_the_official_services_exist_and_optional_ones_sit_behind_profiles(services):
    assert CORE_SERVICES | AIRFLOW_SERVICES | EMULATORS <= set(services)
    for name in CORE_SERVICES:
        assert not services[name].get("profiles"), f"{name} must start with a plain `docker compose up`"
    assert services["airflow-cli"]["profiles"] == ["debug"]
    assert services["flower"]["profiles"] == ["flower"]


def test_every_airflow_service_runs_the_built_image_with_the_common_environment(services, common_env):
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["build"] == ".", name
        assert default(service["image"]) == IMAGE, name
        env = service["environment"]
        missing = {key: value for key, value in common_env.items() if key not in env or env[key] != value}
        assert not missing, f"{name} lacks or changes common settings: {sorted(missing)}"
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in common_env, "dependencies belong in the image"
    assert common_env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"


def test_airflow_services_mount_the_project_folders_including_include(services):
    for name in AIRFLOW_SERVICES:
        mounts = {}
        for volume in services[name]["volumes"]:
            source, target = default(volume).split(":")[:2]
            mounts[target] = source
        for folder in MOUNTED:
            assert mounts.get(f"/opt/airflow/{folder}") == f"./{folder}", f"{name} does not mount {folder}/"
    for folder in ("dags", "plugins", "include"):
        assert (ROOT / folder).is_dir()


def test_the_sites_file_is_read_from_the_mounted_include_folder(common_env):
    path = default(common_env["MATOMO_POSTHOG_CONFIG"])
    assert path == "/opt/airflow/include/matomo_posthog.toml"
    assert (ROOT / Path(path).relative_to("/opt/airflow")).is_file()
    # Airflow appends plugins/ after site-packages, where the image installed its own copy of the package.
    assert common_env["PYTHONPATH"].split(":")[0] == "/opt/airflow/plugins"


def test_celery_executor_with_consistent_postgres_and_redis_urls(services, common_env):
    assert common_env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    database = urlsplit(common_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    results = urlsplit(common_env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+"))
    postgres = services["postgres"]["environment"]
    for url in (database, results):
        assert url.scheme.startswith("postgresql")
        assert url.hostname in services
        assert services[url.hostname]["image"].startswith("postgres:")
        assert (url.username, url.password, url.path.strip("/")) == (
            postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"])
    broker = urlsplit(common_env["AIRFLOW__CELERY__BROKER_URL"])
    assert broker.scheme == "redis"
    assert broker.hostname in services and services[broker.hostname]["image"].startswith("redis:")
    assert broker.port in services[broker.hostname]["expose"]


def test_one_jwt_secret_and_the_execution_api_points_at_the_api_server(services, common_env):
    secret = common_env["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert default(secret), "a secret that differs per container makes every task fail its token check"
    for name in AIRFLOW_SERVICES:
        assert services[name]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"] == secret, name
    url = urlsplit(common_env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert (url.hostname, url.port, url.path) == ("airflow-apiserver", 8080, "/execution/")
    apiserver = services["airflow-apiserver"]
    assert apiserver["command"] == "api-server"
    assert "8080:8080" in apiserver["ports"]
    assert "8080" in " ".join(apiserver["healthcheck"]["test"])


def test_start_order_follows_health(services):
    init = services["airflow-init"]["depends_on"]
    assert init["postgres"]["condition"] == "service_healthy"
    assert init["redis"]["condition"] == "service_healthy"
    for name in AIRFLOW_SERVICES - {"airflow-init", "airflow-cli"}:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in services[name], name
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    for name in ("postgres", "redis"):
        assert "healthcheck" in services[name]


@pytest.mark.parametrize("config", sorted((ROOT / "include").glob("*.toml")), ids=lambda path: path.name)
def test_init_creates_the_matomo_pool_each_sites_file_names(services, config):
    script = "\n".join(argv(services["airflow-init"]))
    for site in load_config(config):
        if site.matomo_pool:
            assert f"airflow pools set {site.matomo_pool} {site.matomo_pool_slots} " in script


def test_connections_come_from_the_environment_never_from_this_file(common_env):
    # A key without a value is passed through from .env or the shell, and left unset when absent.
    assert common_env["AIRFLOW_CONN_MATOMO_DEFAULT"] is None
    assert common_env["AIRFLOW_CONN_POSTHOG_DEFAULT"] is None


def test_emulators_run_only_in_the_demo_profile_on_the_workers_loopback(services):
    text = COMPOSE_FILE.read_text()
    parser = build_parser()
    running_emulators = set()
    for name, service in services.items():
        command = argv(service)
        if "emulate" not in command:
            continue
        running_emulators.add(name)
        assert service.get("profiles") == ["demo"], f"{name} must run only with --profile demo"
        # Loopback inside the worker's network namespace: reachable by tasks, by nothing else.
        assert service.get("network_mode") == "service:airflow-worker", name
        assert not service.get("ports") and not service.get("networks"), name
        # The command line must be one the real CLI accepts; its --host type refuses non-loopback addresses.
        args = parser.parse_args(command[command.index("emulate"):])
        assert ipaddress.ip_address(args.host).is_loopback, name
        assert not ({"--token", "--api-key"} & {part.split("=")[0] for part in command}), \
            f"{name}: secrets go through the environment, not the process list"
        assert f"http://127.0.0.1:{args.port}" in text, f"{name}: the demo connection example names another port"
    assert running_emulators == EMULATORS


def test_every_variable_has_a_default_so_compose_never_substitutes_a_blank():
    lines = [line for line in COMPOSE_FILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    bare = {match.group(1) for line in lines for match in VARIABLE.finditer(line) if not match.group(2)}
    assert not bare, f"give these a ${{NAME:-default}}: {sorted(bare)}"


def test_dockerfile_builds_on_the_airflow_version_pinned_in_requirements():
    pins = dict(
        line.split("==", 1) for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    )
    base = re.search(r"^FROM\s+apache/airflow:(\S+)-python(\d+)\.(\d+)\s*$", DOCKERFILE.read_text(), re.MULTILINE)
    assert base, "the Dockerfile must start from an official apache/airflow:<version>-python<x.y> image"
    assert base.group(1) == pins["apache-airflow"]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = tuple(int(part) for part in re.search(r">=\s*(\d+)\.(\d+)", requires).groups())
    assert (int(base.group(2)), int(base.group(3))) >= minimum
    dockerfile = DOCKERFILE.read_text()
    assert 'pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt' in dockerfile
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv", "include/data", ".git"} <= ignored, "secrets and local state stay out of the image"


def compose_command() -> list[str] | None:
    """``docker compose`` (v2) when the plugin is there, else ``docker-compose``, else None."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_itself_accepts_the_file(tmp_path):
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed "
                    "(Debian: apt-get install --no-install-recommends docker-compose)")
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    # An empty env file and a bare environment: what a fresh checkout without .env gets.
    env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    result = subprocess.run(
        [*command, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "--env-file", str(empty_env),
         "--profile", "demo", "--profile", "debug", "--profile", "flower", "config", "-q"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )
    if result.returncode and "daemon" in result.stderr.lower():
        pytest.skip(f"{' '.join(command)} wants a running Docker engine even for `config`: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert "is not set" not in result.stderr, result.stderr
