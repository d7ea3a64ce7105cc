"""Real processes for tests: workers and the web server, each with its own log file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a crash."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        return self.popen.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class ProcessGroup:
    """Starts `python -m <module>` processes with a shared environment; stops them all."""

    log_dir: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    def start(
        self, name: str, module: str, *args: str, extra_env: dict[str, str] | None = None
    ) -> Proc:
        env = {
            **os.environ,
            "ARCHIVE_URL": str(self.log_dir / "archive"),  # each stack its own (not ./var)
            **self.env,
            **(extra_env or {}),
            "PYTHONUNBUFFERED": "1",
        }
        log = self.log_dir / f"{name}-{len(self.procs)}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        handle.close()
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.output()[-4000:]}" for p in self.procs)
