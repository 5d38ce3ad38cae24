"""Private services for tests: a redis-server of our own on a free port.

Never the Redis on 6379: each test process starts its own server in a temporary directory,
so tests may flush, stop, kill or restart it without touching anyone else's data.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["RedisServer", "free_port", "redis_server_binary", "service_missing"]


def service_missing(reason: str) -> None:
    """Skip the test locally, but fail it under CI, where every service must be present."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: every service must be available)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str | None:
    """``$REDIS_SERVER`` if set, else ``redis-server`` from PATH, else None."""
    explicit = os.environ.get("REDIS_SERVER")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return shutil.which("redis-server")


class RedisServer:
    """A redis-server process owned by the test session.

    ``appendonly`` with ``appendfsync always`` by default, so a restart (even after SIGKILL)
    keeps every acknowledged write; ``debug=True`` allows ``DEBUG`` from localhost.
    """

    def __init__(
        self,
        binary: str,
        *,
        port: int | None = None,
        appendonly: bool = True,
        debug: bool = False,
        extra: list[str] | None = None,
    ) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.appendonly = appendonly
        self.debug = debug
        self.extra = list(extra or [])
        self.dir = Path(tempfile.mkdtemp(prefix=f"q-redis-{self.port}-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command_line(self) -> list[str]:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "always",
            "--logfile",
            str(self.dir / "redis.log"),
            "--maxmemory-policy",
            "noeviction",
        ]
        if self.debug:
            args += ["--enable-debug-command", "local"]
        return args + self.extra

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self.process is not None and self.process.poll() is None:
            return self
        self.process = subprocess.Popen(
            self.command_line(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            while True:
                try:
                    if client.ping():
                        return self
                except (redis.ConnectionError, redis.BusyLoadingError):
                    pass
                if self.process.poll() is not None:
                    log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server exited at start-up:\n{log}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {self.port} did not answer")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM (it writes its AOF) or, with ``kill``, SIGKILL."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self, *, kill: bool = False, down_for: float = 0.0) -> None:
        self.stop(kill=kill)
        if down_for:
            time.sleep(down_for)
        self.start()

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(port=self.port, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        self.stop(kill=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def stall(server: RedisServer, seconds: float) -> threading.Thread:
    """DEBUG SLEEP on a connection of its own: the server runs nothing meanwhile, then runs
    what the clients sent in the meantime, answering clients that gave up long ago.

    Returns once the server sleeps (a PING goes unanswered): on a loaded machine the thread
    may take longer than any fixed pause to connect and send the command."""
    admin = server.client(socket_timeout=seconds + 10)
    admin.ping()  # connected here: the thread only sends
    thread = threading.Thread(target=admin.execute_command, args=("DEBUG", "SLEEP", seconds))
    thread.start()
    probe = server.client(socket_timeout=0.05, retry=Retry(NoBackoff(), 0))
    deadline = time.monotonic() + 10
    try:
        while True:
            assert time.monotonic() < deadline, "the server never went to sleep"
            try:
                probe.ping()
            except redis.TimeoutError:
                return thread
            time.sleep(0.005)
    finally:
        probe.close()
