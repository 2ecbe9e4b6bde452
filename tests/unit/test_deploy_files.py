"""The deploy files keep the properties the guarantees rest on."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import Settings
from tests.utils.services import ROOT

DEPLOY = ROOT / "deploy"
LONGEST_JOB = 3600 + 120  # JOB_TIMEOUT default + RQ's hard-kill margin


def _ini(path: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=True)
    parser.read(DEPLOY / path)
    return parser


def _unit(path: str) -> dict[str, str]:
    lines = (DEPLOY / "systemd" / path).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if re.match(r"^[A-Za-z]+=", line))


def test_supervisor_worker_stops_warm() -> None:
    for conf in ("supervisor/novel-ingest.conf", "supervisor/supervisord.conf"):
        worker = _ini(conf)["program:novel-worker"]
        assert worker["stopsignal"] == "TERM"
        assert worker["stopasgroup"] == "false"
        assert worker["killasgroup"] == "true"
        assert int(worker["stopwaitsecs"]) > LONGEST_JOB
        assert "worker.py" in worker["command"]


def test_supervisor_reconciler_is_one_and_optional() -> None:
    # workers run the reconciler's pass (WORKER_RECONCILE=true): the program is there for
    # those who want it apart, started by hand
    for conf in ("supervisor/novel-ingest.conf", "supervisor/supervisord.conf"):
        reconciler = _ini(conf)["program:novel-reconciler"]
        assert reconciler["numprocs"] == "1"
        assert "reconcile --loop" in reconciler["command"]
        assert reconciler["autostart"] == "false"


def test_supervisor_installed_programs_run_as_the_novel_user_and_log_in_its_directory() -> None:
    parser = _ini("supervisor/novel-ingest.conf")
    programs = [parser[name] for name in parser.sections() if name.startswith("program:")]
    assert len(programs) == 4
    for program in programs:
        assert program["user"] == "novel"
        assert program["directory"] == "/opt/novel-ingest"
        assert program["stdout_logfile"].startswith("/var/log/novel-ingest/")
    steps = (DEPLOY / "README.md").read_text()
    assert "useradd --system" in steps and "install -d -o novel -g novel" in steps
    assert "/var/log/novel-ingest" in steps


def test_standalone_supervisord_keeps_its_files_in_the_checkouts_run_directory() -> None:
    parser = _ini("supervisor/supervisord.conf")
    run = "%(here)s/../../run/"
    assert parser["unix_http_server"]["file"] == run + "supervisor.sock"
    assert parser["supervisorctl"]["serverurl"] == "unix://" + run + "supervisor.sock"
    assert parser["supervisord"]["pidfile"].startswith(run)
    assert parser["supervisord"]["logfile"].startswith(run)
    assert parser["supervisord"]["childlogdir"] == run.rstrip("/")
    programs = [parser[name] for name in parser.sections() if name.startswith("program:")]
    assert programs and all(p["stdout_logfile"].startswith(run) for p in programs)
    assert "/tmp" not in (DEPLOY / "supervisor" / "supervisord.conf").read_text()
    assert parser["program:novel-worker"]["numprocs"] == "%(ENV_WORKER_PROCESSES)s"


SERVICES = sorted(unit.name for unit in (DEPLOY / "systemd").glob("*.service"))
HARDENING = {
    "NoNewPrivileges": "true",
    "ProtectSystem": "strict",
    "ReadWritePaths": "/opt/novel-ingest/data",
    "PrivateTmp": "true",
    "ProtectHome": "true",
    "CapabilityBoundingSet": "",
}


def test_systemd_services_are_hardened() -> None:
    assert len(SERVICES) == 4
    for name in SERVICES:
        unit = _unit(name)
        assert {key: unit.get(key) for key in HARDENING} == HARDENING, name
        assert unit["User"] == "novel", name


def test_systemd_target_leaves_the_reconciler_optional() -> None:
    target = _unit("novel-ingest.target")
    assert target["Wants"].split() == ["novel-api.service"]


def _units_for_this_machine(directory: Path) -> list[Path]:
    """deploy/systemd/ copied to `directory`, /opt/novel-ingest pointed at a checkout
    that exists there, and the venv's python at the one running the tests: verify checks
    that ExecStart's binaries exist."""
    checkout = directory / "novel-ingest"
    (checkout / "data").mkdir(parents=True)
    units = []
    for source in sorted((DEPLOY / "systemd").iterdir()):
        text = source.read_text().replace("/opt/novel-ingest/.venv/bin/python", sys.executable)
        units.append(directory / source.name)
        units[-1].write_text(text.replace("/opt/novel-ingest", str(checkout)))
    return units


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed")
    return found


def test_systemd_units_verify(tmp_path: Path) -> None:
    units = _units_for_this_machine(tmp_path)
    assert len(units) == 5
    done = subprocess.run(
        [_systemd_analyze(), "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    about_ours = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if str(tmp_path) in line or any(unit.name.split("@")[0] in line for unit in units)
    ]
    assert about_ours == []


def test_systemd_services_expose_little(tmp_path: Path) -> None:
    analyze = _systemd_analyze()
    version = subprocess.run([analyze, "--version"], capture_output=True, text=True, check=True)
    if int(version.stdout.split()[1]) < 250:  # `security --offline` came in systemd 250
        pytest.skip("systemd-analyze cannot assess units offline")
    for unit in _units_for_this_machine(tmp_path):
        if unit.suffix != ".service":
            continue
        # exposure 0-100 (shown as 0.0-10.0); "OK" is below 4.0
        argv = [analyze, "security", "--offline=true", "--threshold=30", str(unit)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout[-2000:]


def test_systemd_worker_stops_warm() -> None:
    unit = _unit("novel-worker@.service")
    assert unit["KillMode"] == "mixed"
    assert unit["KillSignal"] == "SIGTERM"
    assert int(unit["TimeoutStopSec"]) > LONGEST_JOB
    assert unit["Restart"] == "always"
    assert "%i" in unit["ExecStart"]


def _redis_conf() -> dict[str, str]:
    return dict(
        line.split(None, 1)
        for line in (DEPLOY / "redis.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )


def test_redis_keeps_every_job() -> None:
    conf = _redis_conf()
    assert conf["appendonly"] == "yes"
    assert conf["appendfsync"] == "everysec"
    assert conf["maxmemory-policy"] == "noeviction"


def test_compose_worker_gets_a_long_grace_period() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    worker = text[text.index("  worker:") : text.index("  reconciler:")]
    assert "stop_grace_period: 1h" in worker
    assert "init: false" in worker


def test_env_example_lists_exactly_the_settings() -> None:
    names = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert names == {name.upper() for name in Settings.model_fields}


def test_env_example_defaults_match_the_code() -> None:
    documented = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        shown = "" if default is None else shown  # `NAME=`: unset
        assert documented[name.upper()] == shown, name


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]


def _argv(service: dict[str, Any]) -> str:
    parts = [*(service.get("entrypoint") or []), *(service.get("command") or [])]
    return " ".join(parts)


def test_compose_publishes_the_api_and_the_dashboard_on_loopback() -> None:
    services = _compose()
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"api", "dashboard"}
    assert services["api"]["ports"] == ["8000:8000"]
    # the dashboard: on the host's loopback unless DASHBOARD_PUBLISH_HOST widens it
    assert services["dashboard"]["ports"] == ["${DASHBOARD_PUBLISH_HOST:-127.0.0.1}:9181:9181"]
    assert "expose" not in services["redis"] and "expose" not in services["postgres"]


def test_compose_dashboard_needs_a_login() -> None:
    dashboard = _compose()["dashboard"]
    environment = dashboard["environment"]
    assert environment["DASHBOARD_USERNAME"].startswith("${DASHBOARD_USERNAME:?")
    assert environment["DASHBOARD_PASSWORD"].startswith("${DASHBOARD_PASSWORD:?")
    assert dashboard["command"] == ["python", "cli.py", "dashboard"]
    # no profile: compose checks required variables of every service whatever the
    # profiles, so the login is asked for anyway; the dashboard runs with the rest
    assert "profiles" not in dashboard


def test_compose_reconciler_is_optional() -> None:
    assert _compose()["reconciler"]["profiles"] == ["reconciler"]


def _dockerignore() -> list[str]:
    """.dockerignore's patterns, as Docker reads them: relative to the context's root
    (`/x` and `x/` mean `x`), `!` re-including."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return [p[0] + p[1:].strip("/") if p.startswith("!") else p.strip("/") for p in patterns]


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image() -> None:
    patterns = _dockerignore()
    kept_out = {".venv", "data", "run", ".env", ".git", "**/__pycache__"}
    kept_out |= {".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"}
    assert kept_out <= set(patterns)
    reincluded = [p[1:] for p in patterns if p.startswith("!")]
    assert reincluded == [".env.example"]  # documentation, no secret
    # and the image still gets what it runs
    for needed in ("requirements.txt", "main.py", "worker.py", "cli.py", "migrations"):
        assert not any(p in (needed, "*", "**") for p in patterns), needed


@pytest.mark.skipif(shutil.which("docker") is None, reason="docker is not installed")
def test_compose_file_is_valid_for_docker_compose() -> None:
    has_compose = subprocess.run(["docker", "compose", "version"], capture_output=True)
    if has_compose.returncode != 0:
        pytest.skip("docker has no compose plugin")
    secrets = {"REDIS_PASSWORD", "POSTGRES_PASSWORD", "API_KEYS"}
    secrets |= {"DASHBOARD_USERNAME", "DASHBOARD_PASSWORD"}
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", **{name: "x" for name in secrets}}
    argv = ["docker", "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    missing = subprocess.run(
        argv, capture_output=True, text=True, env={**env, "DASHBOARD_PASSWORD": ""}, timeout=60
    )
    assert missing.returncode != 0 and "DASHBOARD_PASSWORD" in missing.stderr


def test_compose_api_needs_keys() -> None:
    environment = _compose()["api"]["environment"]
    assert environment["API_KEYS"].startswith("${API_KEYS:?")  # compose refuses to start without
    assert "API_ALLOW_ANONYMOUS" not in environment


def test_compose_redis_asks_for_a_password_kept_off_command_lines() -> None:
    services = _compose()
    redis = services["redis"]
    assert redis["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    argv = _argv(redis)
    assert "requirepass" in argv and "$$REDIS_PASSWORD" in argv and "--include" in argv
    assert "--requirepass" not in argv  # that would put the password in `ps`
    assert "protected-mode" not in argv  # redis.conf's `protected-mode yes` holds
    assert _redis_conf()["protected-mode"] == "yes"
    assert "requirepass" not in _redis_conf()  # no password in the repository
    # the healthcheck authenticates through the environment too
    assert redis["environment"]["REDISCLI_AUTH"] == redis["environment"]["REDIS_PASSWORD"]
    assert "-a " not in " ".join(redis["healthcheck"]["test"])


def test_compose_clients_get_their_passwords_from_the_environment() -> None:
    services = _compose()
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${POSTGRES_PASSWORD:?"
    )
    for name in ("api", "worker", "reconciler", "dashboard"):
        environment = services[name]["environment"]
        assert environment["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?"), name
        assert "novel:${POSTGRES_PASSWORD:?" in environment["DATABASE_URL"], name
        assert not re.search(r"redis://|postgres(ql)?(\+\w+)?://", _argv(services[name])), name


def _commands() -> dict[str, str]:
    """Every command line the supervisor and systemd files start."""
    found = {}
    for conf in ("supervisor/novel-ingest.conf", "supervisor/supervisord.conf"):
        parser = _ini(conf)
        for section in parser.sections():
            if section.startswith("program:"):
                found[f"{conf} {section}"] = parser[section]["command"]
    for unit in (DEPLOY / "systemd").glob("*.service"):
        for key, value in _unit(unit.name).items():
            if key.startswith("Exec"):
                found[f"{unit.name} {key}"] = value
    return found


def test_no_unit_puts_a_url_or_password_on_a_command_line() -> None:
    commands = _commands()
    assert len(commands) >= 10
    for where, command in commands.items():
        assert not re.search(r"://|--url|--redis-url|password|requirepass", command), where
