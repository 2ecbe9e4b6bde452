"""deploy/supervisor/supervisord.conf runs as written: it starts WORKER_PROCESSES workers
that RQ sees, stops them warm, exits on shutdown, and two checkouts on one host run side
by side, each with its own socket, pidfile and logs under its own run/ directory."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils import services
from tests.utils.chaos import descendants, kill
from tests.utils.services import ROOT, wait_for

pytestmark = [pytest.mark.usefixtures("pg_db"), pytest.mark.slow]

CONF = Path("deploy/supervisor/supervisord.conf")  # inside a checkout
CTL_TIMEOUT = 90  # a warm stop of idle workers takes seconds; this only bounds a hang
START_TIMEOUT = 120  # workers import Scrapy first, several at once on a small machine


class Checkout:
    """A checkout of the project in `path` (deploy/ copied, everything else linked), run by
    supervisord exactly as deploy/README.md says, with `workers` workers."""

    def __init__(self, path: Path, *, workers: int) -> None:
        path.mkdir()
        for entry in ROOT.iterdir():
            if entry.name not in {"deploy", "run", ".git"}:
                (path / entry.name).symlink_to(entry)
        shutil.copytree(ROOT / "deploy", path / "deploy")
        (path / "run").mkdir()
        self.path = path
        self.run = path / "run"
        self.env = {
            **os.environ,
            "WORKER_PROCESSES": str(workers),
            "API_PORT": str(services.free_port()),
            "DASHBOARD_PORT": str(services.free_port()),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Checkout:
        # -n keeps supervisord in the foreground, so the test holds its process
        argv = [".venv/bin/supervisord", "-n", "-c", str(CONF)]
        log = (self.path / "supervisord.out").open("wb")
        self.proc = subprocess.Popen(
            argv, cwd=self.path, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        return self

    def ctl(self, *args: str) -> str:
        argv = [".venv/bin/supervisorctl", "-c", str(CONF), *args]
        done = subprocess.run(
            argv, cwd=self.path, capture_output=True, text=True, timeout=CTL_TIMEOUT
        )
        return done.stdout

    def running(self, program: str) -> list[str]:
        """The processes of `program` that supervisord reports RUNNING."""
        lines = self.ctl("status").splitlines()
        return [line.split()[0] for line in lines if line.startswith(program) and "RUNNING" in line]

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}"
            for log in sorted([*self.run.glob("*.log"), self.path / "supervisord.out"])
            if log.exists()
        )

    def exits(self) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(CTL_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """Leave nothing behind, whatever failed: supervisord and every process under it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for pid in descendants(self.proc.pid):
            kill(pid)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def checkouts(tmp_path: Path) -> Iterator[list[Checkout]]:
    made: list[Checkout] = []
    yield made
    for checkout in made:
        checkout.kill()


def rq_workers() -> list[str]:
    """The names of the workers on the test queue, as `rq info` lists them; the Redis URL
    comes from the environment (RQ_REDIS_URL), as deploy/README.md says to run it."""
    argv = [sys.executable, "-m", "rq.cli", "info", "--only-workers", "--raw"]
    argv.append(services.QUEUE_NAME)
    env = {**os.environ, "RQ_REDIS_URL": services.REDIS_URL}
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30, check=True)
    return [line.split()[1] for line in out.stdout.splitlines() if line.startswith("worker ")]


def test_supervisord_runs_the_workers_rq_sees_and_stops_them(
    tmp_path: Path, checkouts: list[Checkout]
) -> None:
    checkout = Checkout(tmp_path / "a", workers=3).start()
    checkouts.append(checkout)
    assert wait_for(lambda: len(rq_workers()) == 3, timeout=START_TIMEOUT), checkout.logs()
    host = socket.gethostname()
    names = sorted(name.rsplit(".", 1)[0] for name in rq_workers())  # less the unique suffix
    assert names == [f"{host}-worker-00", f"{host}-worker-01", f"{host}-worker-02"]
    assert len(checkout.running("novel-worker")) == 3
    # the API migrates first, then must stay up for startsecs before supervisord says RUNNING
    api_up = wait_for(lambda: checkout.running("novel-api") == ["novel-api"], timeout=START_TIMEOUT)
    assert api_up, checkout.logs()
    # the optional programs do not start by themselves
    assert checkout.running("novel-reconciler") == []
    assert checkout.running("novel-dashboard") == []

    checkout.ctl("stop", "all")  # SIGTERM: a warm stop, after which each worker deregisters
    assert checkout.running("novel-") == []
    assert rq_workers() == []
    checkout.ctl("shutdown")
    assert checkout.exits() == 0, checkout.logs()
    assert not (checkout.run / "supervisord.pid").exists()


def test_two_checkouts_run_apart(tmp_path: Path, checkouts: list[Checkout]) -> None:
    first = Checkout(tmp_path / "a", workers=2).start()
    second = Checkout(tmp_path / "b", workers=1).start()
    checkouts += [first, second]
    assert wait_for(lambda: len(rq_workers()) == 3, timeout=START_TIMEOUT), (
        first.logs() + second.logs()
    )
    assert len(first.running("novel-worker")) == 2
    assert len(second.running("novel-worker")) == 1
    for checkout in (first, second):
        assert (checkout.run / "supervisor.sock").is_socket()
        assert checkout.run.joinpath("worker-00.log").exists()
    pids = {int(c.run.joinpath("supervisord.pid").read_text()) for c in (first, second)}
    assert len(pids) == 2

    first.ctl("shutdown")  # one checkout's supervisorctl reaches its own supervisord alone
    assert first.exits() == 0, first.logs()
    assert wait_for(lambda: len(rq_workers()) == 1, timeout=30)
    assert len(second.running("novel-worker")) == 1
    second.ctl("shutdown")
    assert second.exits() == 0, second.logs()
    assert rq_workers() == []
