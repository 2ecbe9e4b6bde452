"""`python cli.py dashboard` as a real process on a free port, and where it listens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

import httpx

from tests.utils.services import ROOT, free_port, wait_for

LISTEN = "0A"  # the TCP state "listening" in /proc/net/tcp


class DashboardProcess:
    """The dashboard as an operator starts it: settings in the environment only."""

    def __init__(self, log_dir: Path, *, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"dashboard-{self.port}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        environ = {**os.environ, **(env or {}), "DASHBOARD_PORT": str(self.port)}
        self.proc = subprocess.Popen(
            [sys.executable, "cli.py", "dashboard"],
            cwd=ROOT,
            env=environ,
            stdout=self._log,
            stderr=self._log,
        )

    def wait_ready(self, timeout: float = 30) -> DashboardProcess:
        assert wait_for(self._answers, timeout=timeout), self.log()
        return self

    def _answers(self) -> bool:
        assert self.proc.poll() is None, self.log()
        try:
            httpx.get(self.url + "/", timeout=1)
        except httpx.TransportError:
            return False
        return True

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self._log.close()


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses a socket of this host listens on at `port` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, hex_port = fields[1].split(":")
        if fields[3] == LISTEN and int(hex_port, 16) == port:
            octets = bytes.fromhex(address)[::-1]  # little-endian on x86 and arm
            found.add(".".join(str(octet) for octet in octets))
    return found


def all_command_lines() -> list[str]:
    """The command line of every process on the host that this user may read."""
    lines = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(path.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # it exited meanwhile
            continue
    return lines
