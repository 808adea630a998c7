"""Start, stop and kill a real `strom broker` process for a test.

The binary is never built here: scripts/test builds the workspace first. A test that
runs without it fails with a message that says what to run.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
BROKER_START_TIMEOUT_S = 30.0
BROKER_STOP_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 60


def strom_binary() -> Path:
    """The debug binary scripts/test builds (under CARGO_TARGET_DIR if set); STROM_BIN
    overrides it (e.g. a release build)."""
    override = os.environ.get("STROM_BIN")
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
    if not target_dir.is_absolute():
        target_dir = REPO_ROOT / target_dir
    path = Path(override) if override else target_dir / "debug" / "strom"
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RuntimeError(
            f"strom binary not found at {path}: build it first with "
            "`cargo build -p strom` (scripts/test does this), or set STROM_BIN"
        )
    return path


def free_port() -> int:
    """An ephemeral loopback port: bind to 0, read it, close. Racy in theory, fine in practice."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


_running: dict[int, subprocess.Popen] = {}


@atexit.register
def _kill_leftovers() -> None:
    """If pytest dies before a fixture's teardown, still leave no broker behind (by PID)."""
    for pid, process in list(_running.items()):
        if process.poll() is None:
            os.kill(pid, signal.SIGKILL)


class Broker:
    """One `strom broker` process on 127.0.0.1:<port> with its data in <data_dir>.

    `start()` can be called again after `kill()` / `stop()`: same port, same data dir,
    which is what the crash-recovery tests need.
    """

    def __init__(self, name: str = "strom", extra_config: dict[str, str] | None = None):
        self.name = name
        self.tmp = tempfile.TemporaryDirectory(prefix=f"strom-compat-{name}-")
        self.tmp_path = Path(self.tmp.name)
        self.data_dir = self.tmp_path / "data"
        self.data_dir.mkdir()
        self.port = free_port()
        self.extra_config = dict(extra_config or {})
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.log_path = self.tmp_path / "broker-0.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        config = {
            "log.dirs": str(self.data_dir),
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            # Brokers run side by side in the suite: the HTTP endpoint takes any free port.
            "http.listener": "127.0.0.1:0",
        }
        config.update(self.extra_config)
        cmd = [str(strom_binary()), "broker"]
        for key, value in config.items():
            cmd += ["--set", f"{key}={value}"]
        return cmd

    def start(self) -> "Broker":
        assert self.process is None or self.process.poll() is not None, "broker already running"
        cmd = self.command()
        self.log_path = self.tmp_path / f"broker-{self.starts}.log"
        self.starts += 1
        log_file = open(self.log_path, "wb")
        env = dict(os.environ)
        env.setdefault("STROM_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        self.process = subprocess.Popen(
            cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        log_file.close()  # the child holds its own descriptor
        _running[self.process.pid] = self.process
        deadline = time.monotonic() + BROKER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"strom broker exited with status {self.process.returncode} during start-up\n"
                    f"command: {' '.join(cmd)}\n{self.log_tail()}"
                )
            if port_accepts(self.port):
                return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(
            f"strom broker did not accept TCP on {self.bootstrap} within "
            f"{BROKER_START_TIMEOUT_S:.0f} s\ncommand: {' '.join(cmd)}\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """SIGKILL by PID, as a crash would: no flush, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=BROKER_STOP_TIMEOUT_S)

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL if it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=BROKER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        chunks = []
        for index in range(self.starts):
            path = self.tmp_path / f"broker-{index}.log"
            try:
                text = path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            chunks.append(f"--- last {lines} lines of {path} ---\n" + "\n".join(text[-lines:]))
        return "\n".join(chunks) if chunks else "(no broker log)"

    def close(self) -> None:
        self.stop()
        self.tmp.cleanup()

    def __enter__(self) -> "Broker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
