"""A Redis Cluster of the tests' own: 3 masters and 3 replicas on free loopback
ports, data under test-output/, made with ``redis-cli --cluster create``."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid

import redis

from tests.faults.servers import OUTPUT, ServerProcess, free_port

NODE_TIMEOUT_MS = 1000  # how long a silent master takes to be judged failed


class Cluster:
    """``ports``: two a node (its own, then its bus port) in place of free ones."""

    def __init__(self, masters: int = 3, replicas: int = 1, ports: list[int] | None = None):
        self.data = OUTPUT / f"cluster-{uuid.uuid4().hex[:8]}"
        self.data.mkdir(parents=True)
        count = masters * (1 + replicas)
        if ports is not None and len(ports) != 2 * count:
            raise ValueError(f"a cluster of {count} nodes takes {2 * count} ports, not {len(ports)}")
        chosen = iter(ports or [])
        self.nodes = [
            ServerProcess("redis", next(chosen, None), args=self._args(next(chosen, None)), data_dir=str(self.data))
            for _ in range(count)
        ]
        self.replicas = replicas

    @staticmethod
    def _args(bus_port: int | None) -> tuple[str, ...]:
        return (
            "--cluster-port",
            str(bus_port or free_port()),  # the bus port; by default port + 10000, past 65535 for a high port
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            f"nodes-{uuid.uuid4().hex[:8]}.conf",
            "--cluster-node-timeout",
            str(NODE_TIMEOUT_MS),
        )

    @property
    def urls(self) -> list[str]:
        return [f"redis://127.0.0.1:{node.port}" for node in self.nodes]

    def start(self) -> Cluster:
        try:
            self._create()
        except BaseException:
            self.stop()  # nothing left running when the cluster could not be made
            raise
        return self

    def _create(self) -> None:
        for node in self.nodes:
            node.start()
        subprocess.run(
            [shutil.which("redis-cli"), "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in self.nodes]]
            + ["--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_ok()

    def alive(self) -> list[ServerProcess]:
        return [node for node in self.nodes if node.process and node.process.poll() is None]

    def wait_ok(self, deadline: float = 30) -> None:
        """Wait until every live node reports the cluster ok and agrees on who owns every slot."""
        stop = time.monotonic() + deadline
        while True:
            try:
                states = [redis.Redis(port=node.port).cluster("info")["cluster_state"] for node in self.alive()]
                views = {str(sorted(map(str, redis.Redis(port=n.port).cluster("slots")))) for n in self.alive()}
                if set(states) == {"ok"} and len(views) == 1:
                    return
            except redis.RedisError:
                pass
            assert time.monotonic() < stop, "the cluster never became ok"
            time.sleep(0.1)

    def owner_of(self, slot: int) -> tuple[ServerProcess, ServerProcess]:
        """Return the master that owns ``slot`` and one of its replicas (waiting for one to sync)."""
        by_port, stop = {node.port: node for node in self.nodes}, time.monotonic() + 20
        while time.monotonic() < stop:
            for start, end, master, *replicas in redis.Redis(port=self.alive()[0].port).execute_command(
                "CLUSTER SLOTS"
            ):
                if start <= slot <= end and replicas:
                    return by_port[master[1]], by_port[replicas[0][1]]
            time.sleep(0.1)
        raise AssertionError(f"no master with a replica owns slot {slot}")

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()
