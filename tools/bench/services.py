"""The bench's private services: one redis-server for every queue, and throw-away Postgres
databases on the local server."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

__all__ = [
    "BenchRedis",
    "create_pg_database",
    "drop_pg_database",
    "pg_available",
    "redis_benchmark",
]

PG = {"host": "127.0.0.1", "port": "5432", "user": "postgres"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    if port == 6379:  # never the shared default Redis port
        return free_port()
    return port


class BenchRedis:
    """A private redis-server on a free port, no persistence: one for the whole bench run."""

    def __init__(self, binary: str | None = None) -> None:
        found = binary or shutil.which("redis-server")
        if not found:
            raise SystemExit(
                "redis-server is not on PATH: install it (apt-get install redis-server) "
                "or pass --redis-server /path/to/redis-server"
            )
        self.binary = found
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"q-bench-redis-{self.port}-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> BenchRedis:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.dir), "--save", "", "--appendonly", "no",
             "--logfile", str(self.dir / "redis.log"), "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    if client.ping():
                        return self
                except redis.ConnectionError:
                    pass
                if self.process.poll() is not None:
                    raise SystemExit(f"redis-server exited at start-up; see {self.dir}/redis.log")
                if time.monotonic() > deadline:
                    raise SystemExit(f"redis-server on port {self.port} did not answer")
                time.sleep(0.02)
        finally:
            client.close()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    def flush(self) -> None:
        """Empty the bench's own server between measurements (nobody else uses it)."""
        client = self.client()
        try:
            client.flushall()
        finally:
            client.close()

    def version(self) -> str:
        client = self.client()
        try:
            return str(client.info("server")["redis_version"])
        finally:
            client.close()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def redis_benchmark(port: int, requests: int = 100_000, pipeline: int = 1000) -> float:
    """``redis-benchmark -t lpush -P <pipeline>`` on the bench server: LPUSH per second."""
    binary = shutil.which("redis-benchmark")
    if not binary:
        raise RuntimeError("redis-benchmark is not on PATH")
    out = subprocess.run(
        [binary, "-h", "127.0.0.1", "-p", str(port), "-t", "lpush", "-n", str(requests),
         "-P", str(pipeline), "-q", "--csv"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if cells and cells[0].upper().startswith("LPUSH"):
            return float(cells[1])
    match = re.search(r"LPUSH[^:]*:\s*([\d.]+)", out)
    if match:
        return float(match.group(1))
    raise RuntimeError(f"could not read redis-benchmark's output: {out!r}")


def pg_available() -> str | None:
    """None when the local PostgreSQL answers, else the reason it cannot be used."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed in the harness environment"
    try:
        with psycopg.connect(**PG, dbname="postgres", connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at {PG['host']}:{PG['port']} (user {PG['user']}): {exc}"
    return None


def create_pg_database(name: str) -> dict[str, str]:
    """Create an empty database ``name`` (dropped first if a crashed run left it)."""
    import psycopg

    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"bad database name {name!r}")
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return {"engine": "postgres", "name": name, **PG}


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
