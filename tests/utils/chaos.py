"""Real processes to break: a persistent Redis of the test's own, supervised workers."""

from __future__ import annotations

import configparser
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from tests.utils.services import ROOT, free_port, wait_for


class RedisServer:
    """A redis-server on a free port, persisting like deploy/redis.conf (AOF, everysec)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "everysec"]
        argv += ["--maxmemory-policy", "noeviction", "--save", ""]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(self.ping, timeout=10), "redis-server did not start"
        return self

    def ping(self) -> bool:
        try:
            return bool(Redis.from_url(self.url, socket_timeout=1).ping())
        except RedisError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: redis flushes the AOF before exiting
            self.proc.wait(10)

    def crash(self) -> None:
        """SIGKILL: no final flush; the AOF may miss up to its last second of writes."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Supervisor:
    """supervisord running N `python worker.py` and the reconciler, restarting the dead."""

    def __init__(self, directory: Path, *, workers: int, env: dict[str, str]) -> None:
        self.dir = directory
        self.conf = directory / "supervisord.conf"
        self.sock = directory / "supervisor.sock"
        self.workers = workers
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        python = sys.executable
        return f"""
[unix_http_server]
file={self.sock}

[supervisord]
logfile={self.dir}/supervisord.log
pidfile={self.dir}/supervisord.pid
nodaemon=true
childlogdir={self.dir}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{self.sock}

[program:worker]
command={python} worker.py --name chaos-%(process_num)02d
process_name=%(program_name)s-%(process_num)02d
numprocs={self.workers}
directory={ROOT}
autorestart=true
startsecs=0
startretries=1000
{_shipped_stop_settings()}
redirect_stderr=true
stdout_logfile={self.dir}/%(program_name)s-%(process_num)02d.log

[program:reconciler]
command={python} cli.py reconcile --loop
directory={ROOT}
autorestart=true
startsecs=0
startretries=1000
redirect_stderr=true
stdout_logfile={self.dir}/reconciler.log
"""

    def start(self) -> Supervisor:
        self.conf.write_text(self._config())
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_for(lambda: len(self.worker_pids()) == self.workers, timeout=30)
        return self

    def ctl(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf), *args],
            capture_output=True,
            text=True,
            timeout=180,
        )
        return out.stdout

    def worker_pids(self) -> list[int]:
        pids = []
        for line in self.ctl("status", "worker:*").splitlines():
            parts = line.split()
            if "RUNNING" in parts and "pid" in parts:
                pids.append(int(parts[parts.index("pid") + 1].rstrip(",")))
        return pids

    def horse_pids(self, workers: list[int] | None = None) -> list[int]:
        """Work-horses running a job (a worker's other child is RQ's scheduler)."""
        return [
            child
            for pid in (self.worker_pids() if workers is None else workers)
            for child in children(pid)
            if "Processing" in title(child)  # RQ's process title in a horse
        ]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(150)
            except subprocess.TimeoutExpired:  # leave no process behind, whatever hangs
                for pid in [*descendants(self.proc.pid), self.proc.pid]:
                    kill(pid)
                self.proc.wait(10)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.dir.glob("*.log"))


STOP_SETTINGS = ("stopsignal", "stopasgroup", "killasgroup")


def _shipped_stop_settings() -> str:
    """How deploy/'s supervisor program stops a worker: the tests stop workers the same way.

    All but the wait: the shipped one outlasts a 1-hour job, and a test must not hang for
    that long if a worker does not stop; 120 s is ample for the tests' jobs.
    """
    shipped = configparser.ConfigParser(interpolation=None)
    shipped.read(ROOT / "deploy" / "supervisor" / "novel-ingest.conf")
    worker = shipped["program:novel-worker"]
    return "\n".join([*(f"{key}={worker[key]}" for key in STOP_SETTINGS), "stopwaitsecs=120"])


def children(pid: int) -> list[int]:
    try:
        raw = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in raw.split()]


def descendants(pid: int) -> list[int]:
    return [d for child in children(pid) for d in (child, *descendants(child))]


def title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def horse_of(worker_pid: int) -> int | None:
    """A worker's work-horse, if it has one now (its other child is RQ's scheduler)."""
    horses = [pid for pid in children(worker_pid) if "Processing" in title(pid)]
    return horses[0] if horses else None


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return title(pid) == ""  # a zombie awaiting its reaper has no command line left


def kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def settle(seconds: float) -> None:
    time.sleep(seconds)
