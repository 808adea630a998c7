"""A multi-node Strom cluster for fault tests: N `strom broker` processes, each a broker and a
Raft controller voter, on 127.0.0.1 with free ports, or each in its own network namespace
(`strom_compat.netns`) so one can be cut off from the others.

Every node keeps its data dir and its logs (one file per start) under the cluster's temp dir;
`Node` is a `Broker`, so conftest's report hook attaches the log tails of the nodes listed in
`request.node.extra_brokers` to a failed test. Processes are killed by PID only.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from .broker import Broker, _running, free_port, strom_binary
from .netns import Netns

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# openraft's INFO line when a voter learns of (or wins) a committed vote: T<term>-N<leader>.
# The highest committed vote is the current Raft leader. ("become leader" lines are not used:
# a restarted ex-leader logs one for its stale vote before it learns the newer one.)
RAFT_VOTE = re.compile(r"^(\S+Z)\s+INFO openraft::engine::handler::vote_handler: vote is changing from \S+ "
                       r"to T(\d+)-N(\d+):committed", re.MULTILINE)
NODE_START_TIMEOUT_S = 40.0
NODE_STOP_TIMEOUT_S = 20.0

# Short liveness settings so faults are detected in seconds, as the cluster brief prescribes.
CLUSTER_CONFIG = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "5000",
    "offsets.topic.num.partitions": "3",
    "transaction.state.log.num.partitions": "3",
}


def tcp_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Node(Broker):
    """One cluster node. `start()` after `kill()`/`stop()` reuses its ports and data dir."""

    def __init__(self, cluster: "Cluster", node_id: int, host: str, kafka_port: int, raft_port: int,
                 exec_prefix: list[str]):
        # Deliberately not Broker.__init__: the cluster owns the temp dir.
        self.cluster = cluster
        self.node_id = node_id
        self.name = f"node{node_id}"
        self.host = host
        self.port = kafka_port
        self.raft_port = raft_port
        self.exec_prefix = exec_prefix
        self.tmp_path = cluster.root / self.name
        self.data_dir = self.tmp_path / "data"
        self.data_dir.mkdir(parents=True)
        self.extra_config: dict[str, str] = {}
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.log_path = self.tmp_path / "broker-0.log"
        self.paused = False

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        config = {
            "node.id": str(self.node_id),
            "log.dirs": str(self.data_dir),
            "listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "http.listener": "",
            "controller.quorum.voters": self.cluster.voters,
            **CLUSTER_CONFIG,
            **self.cluster.extra_config,
            **self.extra_config,
        }
        cmd = [*self.exec_prefix, str(strom_binary()), "broker"]
        for key, value in config.items():
            cmd += ["--set", f"{key}={value}"]
        return cmd

    def launch(self) -> None:
        """Start the process without waiting for it (a node may only serve once a quorum forms)."""
        assert not self.alive(), f"{self.name} already running"
        self.log_path = self.tmp_path / f"broker-{self.starts}.log"
        self.starts += 1
        env = dict(os.environ)
        # openraft at INFO: `raft_leader()` reads who became the Raft leader from the logs.
        env["STROM_LOG"] = os.environ.get("STROM_COMPAT_CLUSTER_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        with open(self.log_path, "wb") as log_file:
            # `ip netns exec` execs the command, so the PID is strom's own.
            self.process = subprocess.Popen(self.command(), stdout=log_file, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env)
        _running[self.process.pid] = self.process
        self.paused = False

    def wait_listening(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with status {self.process.returncode} during "
                                   f"start-up\ncommand: {' '.join(self.command())}\n{self.log_tail()}")
            if tcp_accepts(self.host, self.port):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not accept TCP on {self.bootstrap} in time\n{self.log_tail()}")

    def start(self) -> "Node":
        self.launch()
        self.wait_listening(time.monotonic() + NODE_START_TIMEOUT_S)
        return self

    def kill(self) -> None:
        if self.paused:
            self.resume()
        super().kill()

    def stop(self, timeout: float = NODE_STOP_TIMEOUT_S) -> bool:
        """SIGTERM by PID; SIGKILL if it has not exited within `timeout`. True if it exited on its own."""
        if self.process is None or self.process.poll() is not None:
            return True
        if self.paused:
            self.resume()
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            super().kill()
            return False

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
        self.paused = False

    def log_tail(self, lines: int = 80) -> str:
        return ANSI.sub("", super().log_tail(lines))

    def raft_votes(self) -> list[tuple[int, int, str]]:
        """(term, node id, UTC timestamp) of every committed Raft vote in this node's current log."""
        try:
            text = ANSI.sub("", self.log_path.read_text(errors="replace"))
        except OSError:
            return []
        return [(int(m.group(2)), int(m.group(3)), m.group(1)) for m in RAFT_VOTE.finditer(text)]

    def partition_dir(self, topic: str, partition: int) -> Path:
        return self.data_dir / f"{topic}-{partition}"

    def segment_files(self, topic: str, partition: int) -> list[Path]:
        return sorted(self.partition_dir(topic, partition).glob("*.log"), key=lambda p: p.name)

    def log_bytes(self, topic: str, partition: int) -> bytes:
        """All segment files of the partition, concatenated in base-offset order."""
        return b"".join(path.read_bytes() for path in self.segment_files(topic, partition))

    def log_end_offset(self, topic: str, partition: int) -> int | None:
        """The next offset after the last complete record batch in the partition's segment
        files (v2 batch header: base offset, length, ..., last offset delta), or None if this
        node holds no directory for the partition."""
        if not self.partition_dir(topic, partition).is_dir():
            return None
        end = 0
        for path in self.segment_files(topic, partition):
            data = path.read_bytes()
            at = 0
            while at + 27 <= len(data):
                base, length = struct.unpack_from(">qi", data, at)
                if length <= 0 or at + 12 + length > len(data):
                    break  # a torn tail or preallocated zeros
                (last_delta,) = struct.unpack_from(">i", data, at + 23)
                end = max(end, base + last_delta + 1)
                at += 12 + length
        return end

    def close(self) -> None:
        self.kill()


class Cluster:
    """`nodes` nodes with ids 1..N. With `netns` each node lives in its own namespace at
    10.R.0.<id> and can be `isolate()`d; otherwise all listen on 127.0.0.1."""

    def __init__(self, name: str, nodes: int = 3, use_netns: bool = False,
                 extra_config: dict[str, str] | None = None):
        self.name = name
        self.root = Path(tempfile.mkdtemp(prefix=f"strom-cluster-{name}-"))
        self.extra_config = dict(extra_config or {})
        self.netns: Netns | None = Netns(nodes) if use_netns else None
        self.nodes: dict[int, Node] = {}
        for node_id in range(1, nodes + 1):
            if self.netns is not None:
                host, kafka_port, raft_port = self.netns.host(node_id), 9092, 9093
                prefix = self.netns.exec_prefix(node_id)
            else:
                host, kafka_port, raft_port, prefix = "127.0.0.1", free_port(), free_port(), []
            self.nodes[node_id] = Node(self, node_id, host, kafka_port, raft_port, prefix)
        self.voters = ",".join(f"{n.node_id}@{n.host}:{n.raft_port}" for n in self.nodes.values())
        self._admin: AdminClient | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = NODE_START_TIMEOUT_S) -> "Cluster":
        for node in self.nodes.values():
            node.launch()
        deadline = time.monotonic() + timeout
        for node in self.nodes.values():
            node.wait_listening(deadline)
        self.wait_ready(timeout)
        return self

    def stop_all(self, parallel: bool = True) -> dict[int, bool]:
        """SIGTERM every running node; {node id: exited on its own}."""
        results: dict[int, bool] = {}

        def stop(node: Node) -> None:
            results[node.node_id] = node.stop()

        threads = [threading.Thread(target=stop, args=(n,)) for n in self.nodes.values()]
        for t in threads:
            t.start()
            if not parallel:
                t.join()
        for t in threads:
            t.join()
        return results

    def close(self) -> None:
        self._admin = None
        for node in self.nodes.values():
            try:
                node.kill()
            except Exception:  # noqa: BLE001 - teardown must go on
                pass
        if self.netns is not None:
            self.netns.close()
        if os.environ.get("STROM_COMPAT_KEEP_CLUSTER"):
            print(f"cluster dir kept: {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ client views
    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes.values())

    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 5000,
                                       "topic.metadata.refresh.interval.ms": 1000})
        return self._admin

    def metadata(self, timeout: float = 5.0):
        """ClusterMetadata from whichever broker answers, or None."""
        try:
            return self.admin().list_topics(timeout=timeout)
        except Exception:  # noqa: BLE001 - a node may be down: the caller polls
            return None

    def partitions(self, topic: str) -> dict[int, tuple[int, list[int], list[int]]] | None:
        """{partition: (leader, replicas, isr)} from fresh metadata, or None."""
        md = self.metadata()
        if md is None or topic not in md.topics or md.topics[topic].error is not None:
            return None
        return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in md.topics[topic].partitions.values()}

    def wait_ready(self, timeout: float = 30.0, brokers: int | None = None) -> None:
        """Until metadata lists all (or `brokers`) brokers and names a controller."""
        want = brokers if brokers is not None else len(self.nodes)
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            md = self.metadata()
            if md is not None:
                seen = (sorted(md.brokers), md.controller_id)
                if len(md.brokers) >= want and md.controller_id >= 0:
                    return
            time.sleep(0.2)
        raise AssertionError(f"cluster not ready within {timeout:.0f} s: brokers/controller seen {seen}")

    def raft_leader(self, newer_than: int = -1, timeout: float = 15.0) -> tuple[int, int, str]:
        """(node id, term, UTC time first logged) of the current Raft leader (the active
        controller): the highest committed vote in the running nodes' logs, with a term above
        `newer_than`, whose node is running. The Kafka Metadata answer cannot tell: in KRaft its
        controller_id is just some live broker, and Strom's names the answering node itself."""
        deadline = time.monotonic() + timeout
        while True:
            votes = [v for n in self.nodes.values() if n.alive() for v in n.raft_votes()]
            if votes:
                term, node_id = max((t, n) for t, n, _ in votes)
                if term > newer_than and self.nodes[node_id].alive():
                    first = min(stamp for t, n, stamp in votes if (t, n) == (term, node_id))
                    return node_id, term, first
            if time.monotonic() > deadline:
                raise AssertionError(f"no Raft leader with a term above {newer_than} in the node logs "
                                     f"within {timeout:.0f} s")
            time.sleep(0.1)

    def controller_id(self, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            md = self.metadata()
            if md is not None and md.controller_id >= 0:
                return md.controller_id
            time.sleep(0.2)
        raise AssertionError("no controller in metadata")

    def leader(self, topic: str, partition: int, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            parts = self.partitions(topic)
            if parts and partition in parts and parts[partition][0] >= 0:
                return parts[partition][0]
            time.sleep(0.2)
        raise AssertionError(f"no leader for {topic}-{partition}")

    def wait_full_isr(self, topic: str, partitions: int, timeout: float = 60.0,
                      nodes: list[int] | None = None) -> float:
        """Until every partition's ISR holds all its replicas (or all `nodes`); seconds waited."""
        start = time.monotonic()
        deadline = start + timeout
        last = None
        while time.monotonic() < deadline:
            parts = self.partitions(topic)
            last = parts
            if parts is not None and len(parts) >= partitions:
                ok = True
                for leader, replicas, isr in parts.values():
                    want = set(nodes) if nodes is not None else set(replicas)
                    if leader < 0 or not want <= set(isr):
                        ok = False
                if ok:
                    return time.monotonic() - start
            time.sleep(0.2)
        raise AssertionError(f"{topic}: ISR not complete within {timeout:.0f} s; last metadata "
                             f"{{partition: (leader, replicas, isr)}} = {last}")

    def wait_logs_identical(self, topic: str, partitions: int, timeout: float = 60.0,
                            replicas: int | None = None) -> dict[int, int]:
        """Until each partition's concatenated segment files are byte-identical on `replicas`
        nodes (default: every node of the cluster, as for RF = cluster size), all of those that
        hold the partition; {partition: bytes}. Raises with sizes and the first differing byte
        if they never converge, or if fewer nodes than `replicas` hold the partition."""
        want = replicas if replicas is not None else len(self.nodes)
        deadline = time.monotonic() + timeout
        detail = ""
        while True:
            sizes: dict[int, int] = {}
            detail = ""
            for p in range(partitions):
                contents = {n.node_id: n.log_bytes(topic, p) for n in self.nodes.values()
                            if n.partition_dir(topic, p).is_dir()}
                values = list(contents.values())
                if len(values) < want or any(v != values[0] for v in values):
                    detail += describe_difference(topic, p, contents, self.nodes) + "\n"
                else:
                    sizes[p] = len(values[0])
            if not detail:
                return sizes
            if time.monotonic() >= deadline:
                raise AssertionError(f"replica logs of {topic} differ after {timeout:.0f} s:\n{detail}")
            time.sleep(0.5)

    def log_tails(self) -> str:
        return "\n".join(f"===== {n.name} ({n.bootstrap}) =====\n{n.log_tail()}" for n in self.nodes.values())


def describe_difference(topic: str, partition: int, contents: dict[int, bytes], nodes: dict[int, Node]) -> str:
    if len(contents) < len(nodes):
        missing = sorted(set(nodes) - set(contents))
        if len(contents) < 2:
            return f"{topic}-{partition}: only on nodes {sorted(contents)}; no replica on nodes {missing}"
        prefix = f"{topic}-{partition}: no replica on nodes {missing}\n"
        return prefix + describe_difference(topic, partition, contents,
                                            {i: n for i, n in nodes.items() if i in contents})
    ids = sorted(contents)
    base = contents[ids[0]]
    parts = [f"{topic}-{partition}: sizes " + ", ".join(f"node{i}={len(contents[i])}" for i in ids)]
    for i in ids[1:]:
        other = contents[i]
        if other != base:
            first = first_difference(base, other)
            parts.append(f"  node{ids[0]} vs node{i}: first difference at byte {first}")
    for i in ids:
        parts.append(f"  node{i} segments: {[p.name for p in nodes[i].segment_files(topic, partition)]}")
    return "\n".join(parts)


def first_difference(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    step = 65536
    for start in range(0, n, step):
        if a[start:start + step] != b[start:start + step]:
            # Within the common length, or (last chunk) only one log goes on past it.
            return next((k for k in range(start, min(start + step, n)) if a[k] != b[k]), n)
    return n
