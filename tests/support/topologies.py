"""A local Redis Cluster and a Sentinel group of our own, for tests of Q across Redis nodes.

Like :class:`~tests.support.servers.RedisServer`, every process is started by the test session
on free loopback ports in temporary directories, and killed with it: never a shared Redis.

- :class:`LocalRedisCluster`: 3 masters and 3 replicas (``redis-cli --cluster create
  --cluster-replicas 1``), a node timeout of ``node_timeout_ms`` so a killed master's replica
  takes over within a few seconds.
- :class:`LocalSentinelGroup`: a master, a replica and 3 sentinels (``redis-server
  --sentinel``), quorum 2, a master judged down after ``down_after_ms``.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from tests.support.servers import RedisServer

__all__ = [
    "LocalRedisCluster",
    "LocalSentinelGroup",
    "SentinelProcess",
    "cluster_port",
    "redis_cli_binary",
]

SERVICE = "qmaster"


def redis_cli_binary() -> str | None:
    """``redis-cli`` from PATH (it ships with redis-server), else None."""
    return shutil.which("redis-cli")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        port = random.randint(20000, 29999)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


class LocalRedisCluster:
    """Six redis-servers in cluster mode: 3 masters with one replica each."""

    def __init__(self, binary: str, cli: str, *, node_timeout_ms: int = 1500) -> None:
        self.binary = binary
        self.cli = cli
        self.node_timeout_ms = node_timeout_ms
        self.nodes: list[RedisServer] = []

    @property
    def url(self) -> str:
        """``redis+cluster://`` naming one node (any node will do)."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> LocalRedisCluster:
        extra = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(self.node_timeout_ms),
            # A replica that lost its master for a while may still be promoted: the tests kill
            # masters on purpose and want the replica to take over, not the cluster to stop.
            "--cluster-replica-validity-factor",
            "0",
        ]
        for _ in range(6):
            server = RedisServer(self.binary, port=cluster_port(), debug=True, extra=extra)
            self.nodes.append(server.start())
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [
                self.cli,
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        _wait("the Redis Cluster to be ready", self._ready, 30)
        return self

    def _ready(self) -> bool:
        masters = 0
        for node in self.live_nodes():
            client = node.client(socket_timeout=1)
            try:
                if client.cluster("info")["cluster_state"] != "ok":  # type: ignore[index]
                    return False
                info = client.info("replication")
                if info["role"] == "master":
                    masters += 1
                    if info.get("connected_slaves", 0) < 1:
                        return False
                    if "online" not in str(info.get("slave0", {})):
                        return False
            finally:
                client.close()
        return masters == 3

    def live_nodes(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def client(self, **kwargs: object) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.live_nodes()[0].port, **kwargs)  # type: ignore[arg-type]

    def master_of(self, key: str) -> RedisServer:
        """The node serving ``key``'s slot now."""
        client = self.client()
        try:
            node = client.get_node_from_key(key)
            return next(n for n in self.nodes if n.port == node.port)
        finally:
            client.close()

    def flush(self) -> None:
        """Empty every master (between tests sharing this cluster)."""
        for node in self.live_nodes():
            client = node.client(socket_timeout=2)
            try:
                if client.info("replication")["role"] == "master":
                    client.flushall()
            finally:
                client.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until every slot is served again (after a failover, say)."""

        def covered() -> bool:
            node = self.live_nodes()[0]
            client = node.client(socket_timeout=1)
            try:
                return bool(client.cluster("info")["cluster_state"] == "ok")  # type: ignore[index]
            finally:
                client.close()

        _wait("every slot of the Redis Cluster to be served", covered, timeout)

    def wait_replicas_online(self, timeout: float = 30.0) -> None:
        """Wait until each of the 3 masters has an online replica again (a killed master
        restarted rejoins as its replica's replica)."""
        _wait("each master to have an online replica", self._ready, timeout)

    def close(self) -> None:
        for node in self.nodes:
            node.close()


class SentinelProcess:
    """One ``redis-server --sentinel`` watching the group's master."""

    def __init__(self, binary: str, master_port: int, *, down_after_ms: int) -> None:
        self.binary = binary
        self.port = cluster_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"q-sentinel-{self.port}-"))
        self.conf = self.dir / "sentinel.conf"
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"logfile {self.dir / 'sentinel.log'}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {down_after_ms}\n"
            f"sentinel failover-timeout {SERVICE} 4000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> SentinelProcess:
        self.process = subprocess.Popen(
            [self.binary, str(self.conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(f"the sentinel on {self.port}", lambda: bool(self.client().ping()), 10)
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=1, decode_responses=True)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class LocalSentinelGroup:
    """A master, its replica and three sentinels (quorum 2) watching service ``qmaster``."""

    service = SERVICE

    def __init__(self, binary: str, *, down_after_ms: int = 1000) -> None:
        self.binary = binary
        self.down_after_ms = down_after_ms
        self.servers: list[RedisServer] = []
        self.sentinels: list[SentinelProcess] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def start(self) -> LocalSentinelGroup:
        master = RedisServer(self.binary, debug=True).start()
        replica = RedisServer(
            self.binary, debug=True, extra=["--replicaof", "127.0.0.1", str(master.port)]
        ).start()
        self.servers = [master, replica]
        self.sentinels = [
            SentinelProcess(self.binary, master.port, down_after_ms=self.down_after_ms).start()
            for _ in range(3)
        ]
        self.wait_ready()
        return self

    def master(self) -> RedisServer:
        """The server the sentinels name as master now."""
        _host, port = self.sentinels[0].client().sentinel_get_master_addr_by_name(self.service)
        return next(s for s in self.servers if s.port == int(port))

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until every sentinel knows the master, its replica and the other sentinels,
        and the replica is in sync: a failover can happen from then on."""

        def ready() -> bool:
            for sentinel in self.sentinels:
                client = sentinel.client()
                try:
                    master = client.sentinel_master(self.service)
                    if master["num-other-sentinels"] < 2 or master["num-slaves"] < 1:
                        return False
                    if "s_down" in master["flags"] or "o_down" in master["flags"]:
                        return False
                    replicas = client.sentinel_slaves(self.service)
                    if not any("s_down" not in r["flags"] for r in replicas):
                        return False
                finally:
                    client.close()
            live = [s for s in self.servers if s.process and s.process.poll() is None]
            masters = [s for s in live if s.client().info("replication")["role"] == "master"]
            if len(masters) != 1:
                return False
            info = masters[0].client().info("replication")
            return "online" in str(info.get("slave0", {}))

        _wait("the Sentinel group to be ready", ready, timeout)

    def flush(self) -> None:
        self.master().client().flushall()

    def failover(self, timeout: float = 30.0) -> RedisServer:
        """Kill the master (SIGKILL) and wait until the sentinels promoted its replica;
        returns the new master. The old one is restarted afterwards, as a replica."""
        old = self.master()
        old.stop(kill=True)

        def agreed() -> bool:
            named = {
                s.client().sentinel_get_master_addr_by_name(self.service) for s in self.sentinels
            }
            return len(named) == 1 and int(named.pop()[1]) != old.port

        # Every sentinel, not just one: a sentinel that has not heard of the failover yet would
        # name the old master once it is restarted, before it is turned into a replica.
        _wait("the sentinels to promote the replica", agreed, timeout)
        new = self.master()
        _wait(
            "the promoted replica to accept writes",
            lambda: new.client().info("replication")["role"] == "master",
            timeout,
        )
        return new

    def close(self) -> None:
        for sentinel in self.sentinels:
            sentinel.close()
        for server in self.servers:
            server.close()
