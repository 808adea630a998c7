#!/usr/bin/env python3
"""A bounded soak of a 3-node Strom cluster under mixed load (issue 15, item 4).

Not a test: a script whose figures go into closing notes. Run it with the compat venv:

    tests/compat/.venv/bin/python scripts/soak.py --minutes 30 --json soak.json

It starts a 3-node cluster (tests/compat's `Cluster`, 127.0.0.1, ephemeral ports) from a copy
of $STROM_BIN (default target/release/strom if present, else target/debug/strom; copied so a
rebuild during the run does not change what a restart starts) and keeps this load running,
every part bounded in rate:

- an idempotent acks=all producer (`AckedProducer` of tests/compat/test_cluster.py) on a
  6-partition RF=3 topic with min.insync.replicas=2, every acknowledgement recorded;
- a consumer group of two confluent-kafka consumers reading that topic and committing;
- a transactional producer running small transactions (most committed, every fifth aborted);
- a compacted topic with small segments and keys cycling, so the cleaner runs;
- a topic with retention.ms=60000 and small segments, so retention deletes segments.

Every --restart-every seconds one broker (round robin) is killed with SIGKILL or stopped with
SIGTERM (alternately), restarted, and waited for until every topic's ISR is full again.
Every --sample-seconds it samples per node the RSS (VmRSS) and open file descriptors of the
broker process, the produce ack latency p50/p99 of the window, the group's lag and the acked
count, prints a table row and keeps the sample for --json.

At the end it stops the load, waits for full ISRs, reads the acks topic back and checks every
acknowledged write (`check_acknowledged_writes`), checks that a read_committed read of the
transactional topic holds exactly the committed transactions' records, and prints a summary.
Exit status: 1 if an acknowledged write was lost, 2 if another check failed, 0 otherwise.
Node logs are copied to --keep-logs (default /tmp/soak-loss-logs) when a write was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "compat"))


def default_binary() -> Path:
    release = REPO / "target" / "release" / "strom"
    return release if release.is_file() else REPO / "target" / "debug" / "strom"


ACKS_TOPIC, ACKS_PARTITIONS = "soak-acks", 6
TXN_TOPIC, TXN_PARTITIONS = "soak-txn", 3
COMPACT_TOPIC, COMPACT_PARTITIONS = "soak-compact", 2
RETENTION_TOPIC, RETENTION_PARTITIONS = "soak-retention", 2
GROUP = "soak-group"
TXN_RECORDS = 5
TXN_ABORT_EVERY = 5
MIB = 1024 * 1024

# Broker settings on top of the cluster's short liveness settings: retention checked every
# 10 s, the cleaner idle at most 5 s, and the internal topics on small segments so the group
# commits and transaction markers are compacted during the run too.
SOAK_CONFIG = {
    "log.retention.check.interval.ms": "10000",
    "log.cleaner.backoff.ms": "5000",
    "offsets.topic.segment.bytes": str(1 * MIB),
    "transaction.state.log.segment.bytes": str(1 * MIB),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the load phase")
    parser.add_argument("--sample-seconds", type=float, default=30.0)
    parser.add_argument("--restart-every", type=float, default=180.0,
                        help="seconds between broker restarts (0: none)")
    parser.add_argument("--down-seconds", type=float, default=10.0,
                        help="how long a killed/stopped broker stays down (above replica.lag.time.max.ms=5 s, "
                             "so the ISRs shrink and the restarted node has to rejoin them)")
    parser.add_argument("--produce-interval", type=float, default=0.004,
                        help="sleep between acks=all sends (bounds the rate, ~1/x per second at most)")
    parser.add_argument("--side-rate", type=float, default=50.0,
                        help="records/s to each of the compacted and the retention topic")
    parser.add_argument("--txn-interval", type=float, default=0.25, help="pause between transactions")
    parser.add_argument("--json", type=Path, help="write all samples and the summary here")
    parser.add_argument("--client-log", type=Path,
                        help="librdkafka's own log lines (stderr) go here; default a file in a temp dir")
    parser.add_argument("--keep-logs", type=Path, default=Path("/tmp/soak-loss-logs"),
                        help="where the node logs go if an acknowledged write is lost")
    return parser.parse_args()


# ---------------------------------------------------------------------------------- process
def proc_stats(pid: int | None) -> tuple[float | None, int | None]:
    """(RSS in MiB, open fds) of a process, or (None, None) if it is gone."""
    if pid is None:
        return None, None
    try:
        rss_kib = None
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss_kib = int(line.split()[1])
        if rss_kib is None:  # exited, not yet reaped
            return None, None
        return rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        return None, None


def topic_bytes(node, topic: str, partitions: int) -> int:
    """Bytes of the topic's partition dirs on one node (segments, indexes)."""
    return sum(dir_bytes(node.partition_dir(topic, p)) for p in range(partitions))


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------------------------- load
class GroupMember(threading.Thread):
    """One member of the soak group: reads the acks topic and commits (async) every second."""

    def __init__(self, cluster, index: int):
        super().__init__(daemon=True, name=f"group-member-{index}")
        from confluent_kafka import Consumer
        self.consumer = Consumer({
            "bootstrap.servers": cluster.bootstrap, "group.id": GROUP, "client.id": f"soak-member-{index}",
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000, "socket.timeout.ms": 5000,
            "topic.metadata.refresh.interval.ms": 1000, "reconnect.backoff.max.ms": 500,
            "log.connection.close": False,
        })
        self.stopping = threading.Event()
        self.consumed = 0
        self.commits = 0
        self.commit_errors = 0
        self.errors: list[str] = []

    def run(self) -> None:
        from confluent_kafka import KafkaException
        self.consumer.subscribe([ACKS_TOPIC])
        last_commit = time.monotonic()
        while not self.stopping.is_set():
            msg = self.consumer.poll(0.5)
            if msg is not None:
                if msg.error() is not None:
                    if len(self.errors) < 20:
                        self.errors.append(str(msg.error()))
                else:
                    self.consumed += 1
            if time.monotonic() - last_commit >= 1.0:
                last_commit = time.monotonic()
                try:
                    self.consumer.commit(asynchronous=True)
                    self.commits += 1
                except KafkaException:
                    self.commit_errors += 1  # e.g. nothing consumed since the last commit
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException:
            self.commit_errors += 1
        self.consumer.close()

    def finish(self) -> None:
        self.stopping.set()
        self.join(timeout=60)


class TxnProducer(threading.Thread):
    """Transactions of TXN_RECORDS records each on the transactional topic; every
    TXN_ABORT_EVERY-th is aborted on purpose. Each transaction ends committed (commit
    returned), aborted (abort returned or asked for by the producer) or unknown (the producer
    failed fatally while committing: all or none of its records may be visible)."""

    def __init__(self, cluster, interval_s: float):
        super().__init__(daemon=True, name="txn-producer")
        self.cluster, self.interval_s = cluster, interval_s
        self.stopping = threading.Event()
        self.committed: set[int] = set()
        self.aborted: set[int] = set()
        self.unknown: set[int] = set()
        self.errors: list[str] = []
        self.recreated = 0
        self.commit_latency_ms: list[tuple[float, float]] = []  # (monotonic, ms)
        self.producer = None

    def _new_producer(self):
        from confluent_kafka import Producer
        from test_cluster import producer_config
        producer = Producer(producer_config(self.cluster, **{
            "transactional.id": "soak-txn", "transaction.timeout.ms": 30000, "linger.ms": 1}))
        producer.init_transactions(60)
        return producer

    def _note(self, text: str) -> None:
        if len(self.errors) < 50:
            self.errors.append(f"{time.strftime('%H:%M:%S')} {text}")

    def run(self) -> None:
        from confluent_kafka import KafkaException
        txn = 0
        while not self.stopping.is_set():
            try:
                if self.producer is None:
                    self.producer = self._new_producer()
                self.producer.begin_transaction()
            except KafkaException as error:
                self._note(f"init/begin: {error}")
                self.producer = None
                self.recreated += 1
                time.sleep(1)
                continue
            abort = txn % TXN_ABORT_EVERY == TXN_ABORT_EVERY - 1
            outcome = self._one(txn, abort)
            {"committed": self.committed, "aborted": self.aborted, "unknown": self.unknown}[outcome].add(txn)
            txn += 1
            self.stopping.wait(self.interval_s)
        self.producer = None

    def _one(self, txn: int, abort: bool) -> str:
        """Produce and end one transaction; 'committed', 'aborted' or 'unknown'."""
        from confluent_kafka import KafkaException
        started_commit = False
        try:
            for i in range(TXN_RECORDS):
                while True:
                    try:
                        self.producer.produce(TXN_TOPIC, key=b"k%d" % i, value=b"t%08d-%d" % (txn, i),
                                              partition=(txn + i) % TXN_PARTITIONS)
                        break
                    except BufferError:
                        self.producer.poll(0.1)
            if abort:
                self.producer.abort_transaction(60)
                return "aborted"
            started_commit = True
            begun = time.monotonic()
            while True:
                try:
                    self.producer.commit_transaction(60)
                    self.commit_latency_ms.append((time.monotonic(), (time.monotonic() - begun) * 1000))
                    return "committed"
                except KafkaException as error:
                    err = error.args[0]
                    if err.retriable() and not err.fatal() and not err.txn_requires_abort():
                        self._note(f"commit {txn} retried: {err}")
                        continue
                    raise
        except KafkaException as error:
            err = error.args[0]
            self._note(f"txn {txn}: {err}")
            if not err.fatal() and err.txn_requires_abort():
                try:
                    self.producer.abort_transaction(60)
                    return "aborted"
                except KafkaException as abort_error:
                    self._note(f"abort {txn}: {abort_error}")
            self.producer = None
            self.recreated += 1
            # A new producer with the same transactional.id aborts what this one left open,
            # unless the commit had been written: then it completes. Either way all or none.
            return "unknown" if started_commit else "aborted"


class SideProducer(threading.Thread):
    """Keyed records to the compacted topic (keys cycling over 200) and to the retention
    topic, `rate` records/s each."""

    def __init__(self, cluster, rate: float):
        super().__init__(daemon=True, name="side-producer")
        from confluent_kafka import Producer
        from test_cluster import producer_config
        # Batches stay well under the topics' 64 KiB segment.bytes even when a failover piles
        # records up: a batch larger than a segment is refused (RECORD_BATCH_TOO_LARGE), as in Kafka.
        self.producer = Producer(producer_config(cluster, **{"linger.ms": 20, "batch.size": 16384}))
        self.rate = rate
        self.stopping = threading.Event()
        self.sent = 0
        self.failed = 0
        self.errors: dict[str, int] = {}

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self.failed += 1
            key = f"{msg.topic()}: {err.str()}"
            self.errors[key] = self.errors.get(key, 0) + 1

    def run(self) -> None:
        value = b"v" * 400
        n = 0
        while not self.stopping.is_set():
            try:
                self.producer.produce(COMPACT_TOPIC, key=b"key-%03d" % (n % 200), value=value + b"%d" % n,
                                      on_delivery=self._delivered)
                self.producer.produce(RETENTION_TOPIC, key=b"r%d" % n, value=value, on_delivery=self._delivered)
                n += 1
                self.sent = n
            except BufferError:
                pass
            self.producer.poll(0)
            self.stopping.wait(1.0 / self.rate)
        self.producer.flush(30)
        self.producer = None


class Restarter(threading.Thread):
    """Every `every` seconds: the next node (round robin) killed -9 or stopped (alternately),
    down for `down_s`, started, then waited for until every soak topic's ISR is full."""

    def __init__(self, cluster, every: float, down_s: float, topics: dict[str, int], t0: float):
        super().__init__(daemon=True, name="restarter")
        self.t0 = t0
        self.cluster, self.every, self.down_s, self.topics = cluster, every, down_s, topics
        self.stopping = threading.Event()
        self.busy = threading.Lock()  # held while a node is down or catching up
        self.events: list[dict] = []
        self.errors: list[str] = []

    def run(self) -> None:
        ids = sorted(self.cluster.nodes)
        k = 0
        while not self.stopping.wait(self.every):
            with self.busy:
                if self.stopping.is_set():
                    return
                node = self.cluster.nodes[ids[k % len(ids)]]
                how = "kill -9" if k % 2 == 0 else "stop"
                event = {"node": node.node_id, "how": how, "at": time.monotonic()}
                event["t"] = round(event["at"] - self.t0, 1)
                try:
                    if how == "kill -9":
                        node.kill()
                    else:
                        begun = time.monotonic()
                        event["clean_exit"] = node.stop()
                        event["stop_s"] = round(time.monotonic() - begun, 2)
                    time.sleep(self.down_s)
                    parts = self.cluster.partitions(ACKS_TOPIC) or {}
                    event["isr_without_node"] = sum(1 for _, _, isr in parts.values() if node.node_id not in isr)
                    node.start()
                    event["started_s"] = round(time.monotonic() - event["at"], 2)
                    for topic, partitions in self.topics.items():
                        self.cluster.wait_full_isr(topic, partitions, timeout=180)
                    event["full_isr_after_start_s"] = round(time.monotonic() - event["at"] - event["started_s"], 2)
                    event["until_t"] = round(time.monotonic() - self.t0, 1)
                except Exception as error:  # noqa: BLE001 - note it, keep soaking
                    event["until_t"] = round(time.monotonic() - self.t0, 1)
                    event["error"] = str(error)[:500]
                    self.errors.append(f"restart {k} of node{node.node_id} ({how}): {str(error)[:300]}")
                    if not node.alive():
                        try:
                            node.start()
                        except Exception as again:  # noqa: BLE001
                            self.errors.append(f"node{node.node_id} would not start again: {again}")
                self.events.append(event)
                k += 1

    def finish(self) -> None:
        self.stopping.set()
        self.join(timeout=400)


# ---------------------------------------------------------------------------------- checks
LAG_ERRORS: dict[str, int] = {}


def fresh_view(bootstrap: str) -> str:
    """What a newly created consumer of the group (its own FindCoordinator) reads as committed
    offsets: tells a stale client-side coordinator from a broker that lost the offsets."""
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False,
                         "socket.timeout.ms": 5000})
    try:
        offsets = consumer.committed([TopicPartition(ACKS_TOPIC, p) for p in range(ACKS_PARTITIONS)], timeout=5)
        return "a fresh consumer sees " + ("none either" if all(tp.offset < 0 for tp in offsets) else
                                           "committed offsets" if all(tp.offset >= 0 for tp in offsets) else
                                           "some")
    except Exception as error:  # noqa: BLE001
        return f"a fresh consumer failed: {str(error)[:80]}"
    finally:
        consumer.close()


def group_lag(lag_consumer, bootstrap: str | None = None) -> int | None:
    """Sum over the acks topic's partitions of high watermark - committed offset, or None
    (the reason counted in LAG_ERRORS). A partition with no committed offset counts from 0."""
    from confluent_kafka import TopicPartition
    try:
        parts = [TopicPartition(ACKS_TOPIC, p) for p in range(ACKS_PARTITIONS)]
        committed = lag_consumer.committed(parts, timeout=5)
        lag = 0
        if bootstrap and any(tp.offset < 0 for tp in committed):
            reason = f"{sum(tp.offset < 0 for tp in committed)} partitions without a committed offset; " + \
                fresh_view(bootstrap)
            LAG_ERRORS[reason] = LAG_ERRORS.get(reason, 0) + 1
        for tp in committed:
            high = lag_consumer.get_watermark_offsets(TopicPartition(ACKS_TOPIC, tp.partition), timeout=5)[1]
            lag += high - max(tp.offset, 0)
        return lag
    except Exception as error:  # noqa: BLE001 - a node may be down: no figure this time
        reason = str(error)[:120]
        LAG_ERRORS[reason] = LAG_ERRORS.get(reason, 0) + 1
        return None


def read_committed(cluster, topic: str, partitions: int, timeout: float = 120.0) -> list[bytes]:
    """Values of every record a read_committed consumer sees, up to each high watermark."""
    import uuid
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"soak-rc-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "isolation.level": "read_committed", "socket.timeout.ms": 10000})
    values: list[bytes] = []
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        done = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + timeout
        while len(done) < partitions:
            if time.monotonic() > deadline:
                raise AssertionError(f"read_committed of {topic} did not reach {ends} in {timeout:.0f} s")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    if msg.offset() >= ends[msg.partition()]:
                        done.add(msg.partition())
                    continue
                raise AssertionError(f"read_committed consumer error: {msg.error()}")
            values.append(msg.value())
    finally:
        consumer.close()
    return values


def check_transactions(values: list[bytes], txn: TxnProducer) -> list[str]:
    """Problems found: committed transactions incomplete, aborted ones visible, duplicates."""
    seen: dict[int, list[int]] = {}
    for value in values:
        txn_id, index = value[1:].split(b"-")
        seen.setdefault(int(txn_id), []).append(int(index))
    problems = []
    for t in sorted(txn.committed):
        if sorted(seen.get(t, [])) != list(range(TXN_RECORDS)):
            problems.append(f"committed txn {t}: records {sorted(seen.get(t, []))}")
    for t in sorted(txn.aborted):
        if t in seen:
            problems.append(f"aborted txn {t} visible: records {sorted(seen[t])}")
    for t in sorted(txn.unknown):
        if t in seen and sorted(seen[t]) != list(range(TXN_RECORDS)):
            problems.append(f"txn {t} (outcome unknown) partly visible: {sorted(seen[t])}")
    strangers = sorted(set(seen) - txn.committed - txn.aborted - txn.unknown)
    if strangers:
        problems.append(f"records of transactions never run: {strangers[:10]}")
    return problems


def lost_writes(acked, logs) -> list[tuple]:
    """(seq, partition, acknowledged offset, found) of every acknowledged write not at its offset."""
    from test_cluster import payload
    at = {(p, off): value for p, records in logs.items() for off, value, _ in records}
    stored = {value for records in logs.values() for _, value, _ in records}
    lost = []
    for seq, p, off, _ in acked:
        if off is not None and off >= 0:
            if at.get((p, off)) != payload(seq):
                lost.append((seq, p, off, at.get((p, off))))
        elif payload(seq) not in stored:
            lost.append((seq, p, None, None))
    return lost


# ---------------------------------------------------------------------------------- report
def fmt(value, spec: str = ".0f", width: int = 6) -> str:
    return f"{'-' if value is None else format(value, spec):>{width}}"


def header(node_ids: list[int]) -> str:
    cols = ["  t(s)"] + [f"n{n} MiB  fds" for n in node_ids] + [
        "   acked", " acks/s", " p50ms", " p99ms", "   lag", " txn c/a  ", "cmpKiB", "retKiB", " restarts"]
    return " ".join(cols)


def row(sample: dict, node_ids: list[int]) -> str:
    cells = [fmt(sample["t"], ".0f", 6)]
    for n in node_ids:
        node = sample["nodes"][str(n)]
        cells.append(f"{fmt(node['rss_mib'], '.0f', 6)} {fmt(node['fds'], 'd', 4)}")
    cells += [fmt(sample["acked"], "d", 8), fmt(sample["acks_per_s"], ".0f", 7), fmt(sample["p50_ms"], ".1f", 6),
              fmt(sample["p99_ms"], ".1f", 6), fmt(sample["group_lag"], "d", 6),
              f"{sample['txn_committed']:>5}/{sample['txn_aborted']:<4}", fmt(sample["compact_kib"], "d", 6),
              fmt(sample["retention_kib"], "d", 6), fmt(sample["restarts"], "d", 9)]
    text = " ".join(cells)
    if sample.get("event"):
        text += "  " + sample["event"]
    return text


def node_summary(samples: list[dict], node_id: int, settle_s: float) -> dict:
    """first/last/max of RSS and fds over the run, and the growth of the node's current
    process: its last sample minus its first sample taken at least `settle_s` after it started
    (a restarted process starts low and loads its logs, so its first minute is not a baseline);
    the same for the first process (the longest restart-free stretch at the start)."""
    points = [(s["t"], s["nodes"][str(node_id)]) for s in samples if s["nodes"][str(node_id)]["rss_mib"] is not None]
    if not points:
        return {}
    rss = [p["rss_mib"] for _, p in points]
    fds = [p["fds"] for _, p in points]
    out = {"rss_first": rss[0], "rss_last": rss[-1], "rss_max": max(rss),
           "fds_first": fds[0], "fds_last": fds[-1], "fds_max": max(fds)}

    def growth(start: int) -> dict | None:
        mine = [(t, p) for t, p in points if p["start"] == start]
        if not mine:
            return None
        begun = mine[0][1]["started_t"]
        settled = [(t, p) for t, p in mine if t - begun >= settle_s] or mine[-1:]
        (t0, p0), (t1, p1) = settled[0], mine[-1]
        return {"start": start, "from_t": round(t0), "to_t": round(t1),
                "rss_growth_mib": round(p1["rss_mib"] - p0["rss_mib"], 1), "fds_growth": p1["fds"] - p0["fds"]}

    starts = sorted({p["start"] for _, p in points})
    out["current_process"] = growth(starts[-1])
    out["first_process"] = growth(starts[0])
    out["processes"] = len(starts)
    return out


def main() -> int:
    args = parse_args()
    binary = Path(os.environ.get("STROM_BIN") or default_binary())
    if not binary.is_absolute():
        binary = REPO / binary
    if not binary.is_file():
        print(f"strom binary not found at {binary}: build it (cargo build -p strom) or set STROM_BIN", file=sys.stderr)
        return 2
    snapshot_dir = Path(tempfile.mkdtemp(prefix="strom-soak-bin-"))
    snapshot = snapshot_dir / "strom"
    shutil.copy2(binary, snapshot)
    os.environ["STROM_BIN"] = str(snapshot)

    # librdkafka logs every refused connection of a restart to stderr; keep those lines in a
    # file so the table stays readable, and our own errors on the real stderr.
    client_log = args.client_log or snapshot_dir.parent / f"strom-soak-clients-{os.getpid()}.log"
    real_stderr = os.fdopen(os.dup(2), "w", buffering=1)
    log_fd = os.open(client_log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    sys.stderr = real_stderr
    print(f"client (librdkafka) log: {client_log}", flush=True)

    from confluent_kafka import Consumer
    from strom_compat.cluster import Cluster
    import test_cluster as tc

    kind = "release" if "release" in binary.parts else ("debug" if "debug" in binary.parts else "custom")
    print(f"soak: {args.minutes:g} min, sample every {args.sample_seconds:g} s, restart every "
          f"{args.restart_every:g} s; binary {binary.relative_to(REPO) if binary.is_relative_to(REPO) else binary}"
          f" ({kind}, mtime {time.strftime('%Y-%m-%d %H:%M', time.gmtime(binary.stat().st_mtime))} UTC)", flush=True)

    topics = {ACKS_TOPIC: ACKS_PARTITIONS, TXN_TOPIC: TXN_PARTITIONS,
              COMPACT_TOPIC: COMPACT_PARTITIONS, RETENTION_TOPIC: RETENTION_PARTITIONS}
    cluster = Cluster("soak", extra_config=SOAK_CONFIG)
    result: dict = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                    "binary": str(binary), "binary_kind": kind, "samples": []}
    exit_code = 0
    loads: list = []
    restarter = None
    try:
        cluster.start()
        node_ids = sorted(cluster.nodes)
        tc.create_topic(cluster, ACKS_TOPIC, ACKS_PARTITIONS)
        tc.create_topic(cluster, TXN_TOPIC, TXN_PARTITIONS)
        tc.create_topic(cluster, COMPACT_TOPIC, COMPACT_PARTITIONS, {
            "cleanup.policy": "compact", "segment.bytes": str(64 * 1024), "min.cleanable.dirty.ratio": "0.1",
            "segment.ms": "20000"})
        tc.create_topic(cluster, RETENTION_TOPIC, RETENTION_PARTITIONS, {
            "retention.ms": "60000", "segment.bytes": str(64 * 1024), "segment.ms": "15000"})

        acked = tc.AckedProducer(cluster, ACKS_TOPIC, ACKS_PARTITIONS, interval_s=args.produce_interval)
        members = [GroupMember(cluster, i) for i in range(2)]
        txn = TxnProducer(cluster, args.txn_interval)
        side = SideProducer(cluster, args.side_rate)
        loads = [acked, *members, txn, side]
        for thread in loads:
            thread.start()
        if args.restart_every > 0:
            restarter = Restarter(cluster, args.restart_every, args.down_seconds, topics, time.monotonic())
            restarter.start()
        lag_consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": GROUP,
                                 "enable.auto.commit": False, "socket.timeout.ms": 5000})

        t0 = restarter.t0 if restarter else time.monotonic()
        end = t0 + args.minutes * 60
        started_t = {n: 0.0 for n in node_ids}
        seen_start = {n: cluster.nodes[n].starts for n in node_ids}
        scanned = 0
        events_reported = 0
        print(header(node_ids), flush=True)
        next_sample = t0 + args.sample_seconds
        while True:
            now = time.monotonic()
            if now < next_sample:
                time.sleep(min(next_sample - now, 1.0))
                continue
            next_sample += args.sample_seconds
            t = now - t0
            nodes = {}
            for n in node_ids:
                node = cluster.nodes[n]
                if node.starts != seen_start[n]:
                    seen_start[n] = node.starts
                    started_t[n] = t
                pid = node.process.pid if node.alive() else None
                rss, fds = proc_stats(pid)
                nodes[str(n)] = {"rss_mib": None if rss is None else round(rss, 1), "fds": fds,
                                 "start": node.starts, "started_t": round(started_t[n], 1)}
            with acked.lock:
                fresh = acked.acked[scanned:]
                total = len(acked.acked)
            scanned = total
            latencies = [(at - acked.produced_at[seq]) * 1000 for seq, _, _, at in fresh]
            events = restarter.events[events_reported:] if restarter else []
            events_reported += len(events)
            sample = {
                "t": round(t, 1), "nodes": nodes, "acked": total, "window_acks": len(fresh),
                "acks_per_s": len(fresh) / args.sample_seconds,
                "p50_ms": percentile(latencies, 0.50), "p99_ms": percentile(latencies, 0.99),
                "group_lag": group_lag(lag_consumer, cluster.bootstrap if t > 60 else None),
                "group_consumed": sum(m.consumed for m in members),
                "txn_committed": len(txn.committed), "txn_aborted": len(txn.aborted),
                "side_sent": side.sent,
                "compact_kib": topic_bytes(cluster.nodes[node_ids[0]], COMPACT_TOPIC, COMPACT_PARTITIONS) // 1024,
                "retention_kib": topic_bytes(cluster.nodes[node_ids[0]], RETENTION_TOPIC, RETENTION_PARTITIONS) // 1024,
                "restarts": len(restarter.events) if restarter else 0,
                "restart_in_window": bool(events) or (restarter is not None and restarter.busy.locked()),
                "first_window": not result["samples"],
                "event": "; ".join(f"node{e['node']} {e['how']}" + (f" ERROR {e['error'][:60]}" if 'error' in e else
                                   f" down {e.get('isr_without_node')}/{ACKS_PARTITIONS} out of ISR,"
                                   f" full ISR {e.get('full_isr_after_start_s')}s after start") for e in events),
            }
            result["samples"].append(sample)
            print(row(sample, node_ids), flush=True)
            if acked.fatal:
                print(f"acks producer fatal: {acked.fatal[:3]}", flush=True)
                break
            if now >= end:
                break

        # ------------------------------------------------------------------ wind down
        print("stopping the load ...", flush=True)
        if restarter:
            restarter.finish()
        acked.finish()
        txn.stopping.set()
        side.stopping.set()
        txn.join(timeout=180)
        side.join(timeout=60)
        isr_wait: dict = {}
        for topic, parts in topics.items():
            try:
                isr_wait[topic] = round(cluster.wait_full_isr(topic, parts, timeout=180), 1)
            except AssertionError as error:
                isr_wait[topic] = f"not full: {str(error)[:300]}"
        # The group drains what is left, then stops.
        drain_deadline = time.monotonic() + 60
        final_lag = group_lag(lag_consumer)
        while (final_lag is None or final_lag > 0) and time.monotonic() < drain_deadline:
            time.sleep(2)
            final_lag = group_lag(lag_consumer)
        for member in members:
            member.finish()
        lag_consumer.close()

        # ------------------------------------------------------------------ checks
        checks: dict = {"isr_wait_s": isr_wait, "producer": acked.summary(), "final_group_lag": final_lag}
        print("reading the acks topic back ...", flush=True)
        logs = tc.read_everything(cluster, ACKS_TOPIC, ACKS_PARTITIONS, timeout=600)
        lost = lost_writes(acked.acked, logs)
        checks["records_read"] = sum(len(v) for v in logs.values())
        checks["lost"] = len(lost)
        checks["lost_examples"] = [list(map(str, x)) for x in lost[:50]]
        try:
            checks["acks_without_offset"] = tc.check_acknowledged_writes(acked.acked, logs)
            checks["acked_check"] = "ok"
        except AssertionError as error:
            checks["acked_check"] = str(error)[:2000]
        txn_values = read_committed(cluster, TXN_TOPIC, TXN_PARTITIONS)
        txn_problems = check_transactions(txn_values, txn)
        checks["txn"] = {"committed": len(txn.committed), "aborted": len(txn.aborted), "unknown": len(txn.unknown),
                         "records_read_committed": len(txn_values), "problems": txn_problems[:20],
                         "producer_recreated": txn.recreated, "errors": txn.errors[:20]}
        checks["group"] = {"consumed": sum(m.consumed for m in members), "commits": sum(m.commits for m in members),
                           "commit_errors": sum(m.commit_errors for m in members),
                           "errors": [e for m in members for e in m.errors][:10]}
        checks["side"] = {"sent": side.sent, "failed": side.failed, "errors": side.errors}
        checks["group_lag_errors"] = LAG_ERRORS
        checks["restarts"] = restarter.events if restarter else []
        checks["restart_errors"] = restarter.errors if restarter else []
        checks["side_kib_node1"] = {
            "compact": topic_bytes(cluster.nodes[node_ids[0]], COMPACT_TOPIC, COMPACT_PARTITIONS) // 1024,
            "retention": topic_bytes(cluster.nodes[node_ids[0]], RETENTION_TOPIC, RETENTION_PARTITIONS) // 1024}
        result["checks"] = checks
        if lost:
            exit_code = 1
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for node in cluster.nodes.values():
                for log in sorted(node.tmp_path.glob("broker-*.log")):
                    shutil.copy2(log, args.keep_logs / f"{node.name}-{log.name}")
            print(f"LOST {len(lost)} acknowledged writes; node logs copied to {args.keep_logs}", flush=True)
        elif checks["acked_check"] != "ok" or txn_problems or checks["restart_errors"] or acked.fatal:
            exit_code = 2
        print_summary(result, node_ids, args)
    except BaseException:
        traceback.print_exc()
        exit_code = exit_code or 2
        print("node log tails:\n" + cluster.log_tails(), flush=True)
    finally:
        for thread in loads:
            if hasattr(thread, "stopping"):
                thread.stopping.set()
        if args.json:
            args.json.write_text(json.dumps(result, indent=1, default=str))
            print(f"samples and summary written to {args.json}")
        cluster.close()
        shutil.rmtree(snapshot_dir, ignore_errors=True)
    return exit_code


def print_summary(result: dict, node_ids: list[int], args) -> None:
    samples, checks = result["samples"], result["checks"]
    settle = max(60.0, args.sample_seconds)
    summary: dict = {"nodes": {}}
    print("\n==== soak summary ====")
    print(f"duration {samples[-1]['t']:.0f} s, {len(samples)} samples, restarts {len(checks['restarts'])} "
          f"(errors {len(checks['restart_errors'])}), binary {result['binary_kind']}")
    print("node  RSS MiB first/last/max   fds first/last/max   growth of current process (RSS MiB, fds, over)"
          "   growth of first process")
    for n in node_ids:
        s = node_summary(samples, n, settle)
        summary["nodes"][str(n)] = s
        if not s:
            print(f"node{n}  no samples")
            continue

        def g(x):
            return "-" if not x else f"{x['rss_growth_mib']:+.1f}, {x['fds_growth']:+d}, {x['from_t']}-{x['to_t']} s"
        print(f"node{n} {s['rss_first']:6.0f} {s['rss_last']:6.0f} {s['rss_max']:6.0f}     "
              f"{s['fds_first']:5d} {s['fds_last']:5d} {s['fds_max']:5d}      {g(s['current_process']):<32} "
              f"{g(s['first_process'])}")
    # A window is disturbed when it overlaps a restart (kill/stop to full ISR) or follows one
    # (acks delayed by the failover land in the next window); the first window is warm-up.
    spans = [(e["t"], e.get("until_t", e["t"])) for e in checks["restarts"]]
    for s in samples:
        lo, hi = s["t"] - 2 * args.sample_seconds, s["t"]
        s["disturbed"] = s["first_window"] or s["restart_in_window"] or any(a <= hi and b >= lo for a, b in spans)
    p99 = [s["p99_ms"] for s in samples if s["p99_ms"] is not None]
    quiet = [s["p99_ms"] for s in samples if s["p99_ms"] is not None and not s["disturbed"]]
    summary["p99_ms"] = {"median": statistics.median(p99) if p99 else None, "max": max(p99) if p99 else None,
                         "median_no_restart": statistics.median(quiet) if quiet else None,
                         "max_no_restart": max(quiet) if quiet else None}
    q = summary["p99_ms"]
    print(f"produce ack p99 per {args.sample_seconds:g} s window: median {fmt(q['median'], '.1f', 0)} ms, "
          f"max {fmt(q['max'], '.1f', 0)} ms; {len(quiet)} windows away from restarts and warm-up: median "
          f"{fmt(q['median_no_restart'], '.1f', 0)} ms, max {fmt(q['max_no_restart'], '.1f', 0)} ms")
    prod = checks["producer"]
    print(f"acks=all producer: produced {prod['produced']}, acked {prod['acked']}, failed {prod['failed']}, "
          f"unflushed {prod['unflushed']}, fatal {prod['fatal']}; read back {checks['records_read']}")
    print(f"LOST acknowledged writes: {checks['lost']}  (check_acknowledged_writes: "
          f"{'ok' if checks['acked_check'] == 'ok' else checks['acked_check'][:300]})")
    if checks["lost"]:
        print(f"  lost (seq, partition, acked offset, found): {checks['lost_examples'][:20]}")
    t = checks["txn"]
    print(f"transactions: committed {t['committed']}, aborted {t['aborted']}, unknown {t['unknown']}, "
          f"read_committed records {t['records_read_committed']}, problems {len(t['problems'])} "
          f"{t['problems'][:5]}, producer recreated {t['producer_recreated']}")
    gr = checks["group"]
    print(f"group: consumed {gr['consumed']}, commits {gr['commits']}, final lag {checks['final_group_lag']}; "
          f"lag not measured / partitions without a committed offset: {checks['group_lag_errors']}")
    kib = [(s["compact_kib"], s["retention_kib"]) for s in samples]
    print(f"side topics: sent {checks['side']['sent']} records to each, failed {checks['side']['failed']}; on node1, "
          f"compacted topic KiB max {max(c for c, _ in kib)} end {checks['side_kib_node1']['compact']}, retention "
          f"topic KiB max {max(r for _, r in kib)} end {checks['side_kib_node1']['retention']} "
          f"(produced {checks['side']['sent'] * 410 // 1024} KiB to each); delivery errors {checks['side']['errors']}")
    for e in checks["restarts"]:
        print(f"  restart node{e['node']} {e['how']}: " + ", ".join(
            f"{k} {v}" for k, v in e.items() if k not in ("node", "how", "at")))
    for err in checks["restart_errors"]:
        print(f"  restart error: {err}")
    result["summary"] = summary


if __name__ == "__main__":
    sys.exit(main())
