"""Run Apache Kafka's own command-line tools (scripts/kafka) and read their output.

Every call starts a JVM (a second or more), so tests batch their assertions around few calls.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA = REPO_ROOT / "scripts" / "kafka"
TOOL_TIMEOUT_S = 90.0


class ToolFailed(AssertionError):
    pass


def jvm_options() -> str:
    """KAFKA_OPTS with a class-data-sharing archive of the tools' classes: the first call of a
    run (with STROM_KAFKA_CDS naming a file that does not exist yet) writes it at exit, later
    calls map it instead of loading and verifying the same classes again, which cuts every
    JVM start by about a third. A stale archive (other jars or JDK) is ignored by the JVM."""
    options = os.environ.get("KAFKA_OPTS", "")
    archive = os.environ.get("STROM_KAFKA_CDS")
    if not archive:
        return options
    if os.path.exists(archive):
        return f"{options} -XX:SharedArchiveFile={archive}"
    return f"{options} -XX:ArchiveClassesAtExit={archive}"


def kafka(tool: str, *args: str, input: str | None = None, ok: bool = True,
          timeout: float = TOOL_TIMEOUT_S) -> subprocess.CompletedProcess:
    """`scripts/kafka TOOL ARGS...`; with `ok` a non-zero exit fails the test with both streams."""
    command = [str(KAFKA), tool, *args]
    env = {**os.environ, "KAFKA_OPTS": jvm_options()}
    try:
        result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout,
                                stdin=None if input is not None else subprocess.DEVNULL, env=env)
    except subprocess.TimeoutExpired as error:
        raise ToolFailed(f"{tool} did not finish within {timeout:.0f} s: {' '.join(args)}\n"
                         f"stdout:\n{error.stdout}\nstderr:\n{error.stderr}") from None
    if ok and result.returncode != 0:
        raise ToolFailed(f"{tool} {' '.join(args)} exited with {result.returncode}\n"
                         f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def out(tool: str, *args: str, **kwargs) -> str:
    """A successful call's stdout."""
    return kafka(tool, *args, **kwargs).stdout


def table(text: str, first_column: str) -> list[dict[str, str]]:
    """Rows of the whitespace-aligned tables kafka-consumer-groups and kafka-transactions print
    (a header line starting with `first_column`, then one line per row; blank lines and other
    text end a table). Several tables in one output are concatenated."""
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for line in text.splitlines():
        cells = line.split()
        if not cells:
            header = None
            continue
        if cells[0] == first_column:
            header = cells
            continue
        if header is not None and len(cells) == len(header):
            rows.append(dict(zip(header, cells)))
    return rows


def fields(line: str) -> dict[str, str]:
    """`Topic: t\tPartition: 0\tLeader: 1` (kafka-topics --describe) as a dict."""
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"(\w+): ?([^\t]*)", line)}


def describe_partitions(text: str) -> dict[int, dict[str, str]]:
    """kafka-topics --describe partition lines: {partition: {Leader, Replicas, Isr, ...}}."""
    parts = {}
    for line in text.splitlines():
        if "Partition:" in line and "PartitionCount" not in line:
            f = fields(line.strip())
            parts[int(f["Partition"])] = f
    return parts


def offsets(text: str) -> dict[tuple[str, int], int]:
    """kafka-get-offsets lines `topic:partition:offset`."""
    result = {}
    for line in text.split():
        topic, partition, offset = line.rsplit(":", 2)
        result[(topic, int(partition))] = int(offset)
    return result
