"""The deploy files keep the properties the guarantees rest on."""

from __future__ import annotations

import configparser
import re

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


def test_redis_keeps_every_job() -> None:
    conf = dict(
        line.split(None, 1)
        for line in (DEPLOY / "redis.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
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
