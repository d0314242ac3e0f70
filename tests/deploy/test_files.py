"""The deployment files: docker-compose (compose spec), Railway (railway-sdk), Render, Dockerfile."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from sharedstate.cli.main import build_parser

ROOT = Path(__file__).parents[2]
SCHEMA = Path(__file__).with_name("compose-spec.json")  # shared/schemas/compose-spec.json, vendored


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def assert_real_command(argv: list[str]) -> None:
    """A `sharedstate ...` command the CLI parses, or the example bot module."""
    if argv[:3] == ["python", "-m", "examples.bot"]:
        assert importlib.util.find_spec("examples.bot") is not None
        return
    assert argv[0] == "sharedstate", argv
    args = build_parser().parse_args(argv[1:])  # SystemExit on an unknown subcommand or option
    assert callable(args.handler)


def test_compose_validates_against_the_compose_spec() -> None:
    schema = json.loads(SCHEMA.read_text())  # draft-07, though its $schema URL lacks the "#"
    jsonschema.Draft7Validator(schema).validate(compose())


def test_compose_services() -> None:
    data = compose()
    services = data["services"]
    assert set(services) == {"redis", "worker", "api", "bot"}
    redis = services["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    assert "--maxmemory-policy noeviction" in command
    assert "PONG" in " ".join(redis["healthcheck"]["test"])
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    for name in ("worker", "api", "bot"):
        service = services[name]
        assert service["build"] == "." and service["image"] == "sharedstate:local"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert_real_command(service["command"])
    mounts = {name: service.get("volumes", []) for name, service in services.items() if name != "redis"}
    assert mounts["worker"] == ["snapshots:/app/data"] and not mounts["api"] and not mounts["bot"]
    assert services["worker"]["stop_grace_period"] == "30s"
    assert "x-app" in data and set(data["volumes"]) == {"redis-data", "snapshots"}
    text = (ROOT / "docker-compose.yml").read_text()
    assert "&app" in text and text.count("<<: *app\n") == 3


def test_railway_iac_compiles_with_railway_sdk() -> None:
    railway_sdk = pytest.importorskip("railway_sdk")
    spec = importlib.util.spec_from_file_location("railway_config", ROOT / "railway" / "railway.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    graph = module.main(railway_sdk.create_railway_context(environment="production")).to_graph()
    resources = {resource["name"]: resource for resource in graph["resources"]}
    assert set(resources) == {"Redis", "worker", "api", "bot", "backups"}
    redis = resources["Redis"]
    assert redis["engine"] == "redis" and redis["output"] == "REDIS_URL"
    # Railway deploys its own Redis image: no start command that assumes another image's entrypoint.
    assert "startCommand" not in redis.get("deploy", {})
    assert "docker-entrypoint" not in (ROOT / "railway" / "railway.py").read_text()
    reference = {"type": "reference", "resource": "database.Redis", "output": "REDIS_URL"}
    for name in ("worker", "api", "bot"):
        service = resources[name]
        assert service["variables"]["REDIS_URL"] == reference
        assert_real_command(shlex.split(service["deploy"]["startCommand"]))
    worker = resources["worker"]
    assert resources["backups"]["type"] == "bucket"
    for name in ("worker", "api"):  # both reach the backups: the worker needs no volume
        variables = resources[name]["variables"]
        assert variables["SHAREDSTATE_BACKUP_URL"]["value"].startswith(
            "s3://${{backups.AWS_S3_BUCKET_NAME}}/"
        )
        assert variables["AWS_SECRET_ACCESS_KEY"] == {
            "type": "reference", "resource": "bucket.backups", "output": "AWS_SECRET_ACCESS_KEY"
        }  # fmt: skip
    assert "volumeAttachments" not in worker
    assert "numReplicas" not in worker["deploy"]
    assert worker["variables"]["RAILWAY_DEPLOYMENT_DRAINING_SECONDS"]["value"] == "30"
    assert not any("volume" in key.lower() for key in resources["api"])
    assert resources["api"]["deploy"]["healthcheckPath"] == "/healthz"
    assert resources["api"]["variables"]["SHAREDSTATE_API_TOKENS"]["type"] == "sharedReference"


def test_railway_setup_script_uses_the_documented_command() -> None:
    script = (ROOT / "railway" / "setup.sh").read_text()
    assert "railway environment edit --service-config" in script
    for setting in ("deploy.startCommand", "deploy.healthcheckPath", "deploy.restartPolicyType"):
        assert setting in script
    assert "RAILWAY_DEPLOYMENT_DRAINING_SECONDS=30" in script
    # Redis's persistence is told to the running server, not baked into a start command.
    assert "docker-entrypoint" not in script and "edit Redis" not in script
    for setting in ("appendonly yes", "appendfsync everysec", "maxmemory-policy noeviction"):
        assert f'"{setting}"' in script
    assert "CONFIG SET $setting" in script and "CONFIG REWRITE" in script
    assert "railway.toml" not in script and not (ROOT / "railway.toml").exists()
    assert not (ROOT / "railway.json").exists()


def test_render_blueprint() -> None:
    blueprint = yaml.safe_load((ROOT / "render.yaml").read_text())
    services = {service["name"]: service for service in blueprint["services"]}
    keyvalue = services["sharedstate-redis"]
    assert keyvalue["type"] == "keyvalue" and keyvalue["maxmemoryPolicy"] == "noeviction"
    assert keyvalue["ipAllowList"] == []
    assert keyvalue["persistence"] == "journal_and_snapshot"  # a system of record journals
    assert keyvalue["plan"] != "free"  # the free plan does not persist at all
    worker = services["sharedstate-worker"]
    assert worker["type"] == "worker" and worker["disk"]["mountPath"] == "/app/data"
    assert worker["maxShutdownDelaySeconds"] >= 30
    assert [s for s in services.values() if "disk" in s] == [worker]
    assert services["sharedstate-api"]["healthCheckPath"] == "/healthz"
    for service in services.values():
        if service["type"] == "keyvalue":
            continue
        assert service["runtime"] == "docker"
        assert_real_command(shlex.split(service["dockerCommand"]))
        redis_url = next(var for var in service["envVars"] if var.get("key") == "REDIS_URL")
        assert redis_url["fromService"] == {
            "name": "sharedstate-redis",
            "type": "keyvalue",
            "property": "connectionString",
        }
        assert {"fromGroup": "sharedstate"} in service["envVars"]
    [group] = blueprint["envVarGroups"]
    secrets = {var["key"]: var for var in group["envVars"]}
    assert secrets["SHAREDSTATE_API_ADMIN_TOKEN"]["generateValue"] is True
    # A dashboard prompt works only in a service's own envVars: never in a group.
    assert not any("sync" in var for var in group["envVars"])
    api_vars = {var.get("key"): var for var in services["sharedstate-api"]["envVars"]}
    assert api_vars["SHAREDSTATE_API_TOKENS"]["sync"] is False


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    base = next(line for line in lines if line.startswith("FROM "))
    assert re.fullmatch(r"FROM python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base  # pinned
    assert "USER app" in text and "HEALTHCHECK" in text and "/healthz" in text
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in text and "install -y --no-install-recommends tini" in text
    # The dependency layer comes before the code, so a code change does not reinstall it.
    copy_project = lines.index("COPY pyproject.toml ./")
    install_deps = next(i for i, line in enumerate(lines) if "pip install -r" in line)
    copy_code = lines.index("COPY sharedstate ./sharedstate")
    assert copy_project < install_deps < copy_code
    assert "pip install --no-deps ." in text
    copies = [line.split()[1] for line in lines if line.startswith("COPY ")]
    assert not {"worker", "api"} & set(copies)  # one import package
    assert "/app/data" in text


def test_compose_leaves_commands_that_start_nothing_working() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert ":?" not in text  # ${VAR:?} fails `docker compose config`, `ps` and `down` when unset
    services = compose()["services"]
    assert all(service.get("init") is True for service in services.values())


def test_compose_config_without_secrets() -> None:
    """`docker compose config` with no secret set, where the compose plugin is installed."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode:
        pytest.skip("docker compose is not installed here; the file checks above still ran")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHAREDSTATE_")}
    done = subprocess.run(
        [docker, "compose", "config", "--quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
