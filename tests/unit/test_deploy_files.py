"""The deploy files keep the properties the guarantees rest on."""

from __future__ import annotations

import configparser
import re
from typing import Any

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


def test_supervisor_runs_one_reconciler() -> None:
    reconciler = _ini("supervisor/novel-ingest.conf")["program:novel-reconciler"]
    assert reconciler["numprocs"] == "1"
    assert "reconcile --loop" in reconciler["command"]


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


def test_compose_publishes_the_api_alone() -> None:
    services = _compose()
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"api"}
    assert services["api"]["ports"] == ["8000:8000"]
    # the dashboard has no login yet: started only on request, and never published
    assert services["dashboard"]["profiles"] == ["dashboard"]
    assert "expose" not in services["redis"] and "expose" not in services["postgres"]


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
