"""A private Linux network for a test cluster: one network namespace per node, each joined to a
bridge in the root namespace by a veth pair, so the test process (root namespace) reaches every
node while a node can be cut off by downing the root-side end of its veth.

    10.<R>.0.254/24   bridge in the root namespace (R random, chosen to clash with no route)
    10.<R>.0.<n>/24   node n inside namespace strom<tag>n

Needs root and iproute2. `available()` says whether that works here (probed once, by creating
and deleting a namespace); tests fall back to something else when it does not. Everything
created is removed by `close()`, also after partial set-up, and at interpreter exit.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import random
import shutil
import subprocess

_available: bool | None = None
_open: list["Netns"] = []


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


def available() -> tuple[bool, str]:
    """(True, "") if namespaces can be made here, else (False, why not)."""
    global _available, _why
    if _available is None:
        _available, _why = _probe()
    return _available, _why


_why = ""


def _probe() -> tuple[bool, str]:
    if os.environ.get("STROM_COMPAT_NO_NETNS"):
        return False, "STROM_COMPAT_NO_NETNS is set"
    if shutil.which("ip") is None:
        return False, "iproute2 (`ip`) not installed"
    if os.geteuid() != 0:
        return False, "not root"
    name = f"stromprobe{os.getpid()}"
    try:
        _ip("netns", "add", name)
    except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired) as error:
        detail = getattr(error, "stderr", "") or str(error)
        return False, f"`ip netns add` failed: {detail.strip()}"
    _ip("netns", "del", name, check=False)
    return True, ""


def _used_networks() -> list[ipaddress.IPv4Network]:
    out = _ip("-4", "route", "show", "table", "all", check=False).stdout
    nets = []
    for line in out.splitlines():
        word = line.split()[0] if line.split() else ""
        if word in ("default", "broadcast", "local", "unreachable", "blackhole"):
            word = line.split()[1] if len(line.split()) > 1 else ""
        try:
            nets.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            continue
    return nets


class Netns:
    """n namespaces + bridge. `host(i)` is node i's address (1-based), `ns_name(i)` its namespace,
    `isolate(i)` / `heal(i)` cut and restore its link, `exec_prefix(i)` prefixes a command."""

    def __init__(self, nodes: int):
        self.nodes = nodes
        self.tag = f"{random.randrange(16**4):04x}"
        used = _used_networks()
        for _ in range(200):
            octet = random.randrange(64, 250)
            net = ipaddress.ip_network(f"10.{octet}.0.0/24")
            if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
                break
        else:
            raise RuntimeError("no free 10.x.0.0/24 network for the test namespaces")
        self.octet = octet
        self.bridge = f"sbr{self.tag}"
        self.created_ns: list[str] = []
        self.created_links: list[str] = []
        _open.append(self)
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def host(self, node: int) -> str:
        return f"10.{self.octet}.0.{node}"

    def ns_name(self, node: int) -> str:
        return f"strom{self.tag}n{node}"

    def root_veth(self, node: int) -> str:
        return f"svr{self.tag}{node}"

    def exec_prefix(self, node: int) -> list[str]:
        return ["ip", "netns", "exec", self.ns_name(node)]

    def _setup(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        self.created_links.append(self.bridge)
        _ip("addr", "add", f"10.{self.octet}.0.254/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for node in range(1, self.nodes + 1):
            ns, root_end, ns_end = self.ns_name(node), self.root_veth(node), f"svn{self.tag}{node}"
            _ip("netns", "add", ns)
            self.created_ns.append(ns)
            _ip("link", "add", root_end, "type", "veth", "peer", "name", ns_end)
            self.created_links.append(root_end)
            _ip("link", "set", ns_end, "netns", ns)
            _ip("link", "set", root_end, "master", self.bridge)
            _ip("link", "set", root_end, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{self.host(node)}/24", "dev", ns_end)
            _ip("-n", ns, "link", "set", ns_end, "up")
            _ip("-n", ns, "route", "add", "default", "via", f"10.{self.octet}.0.254")

    def isolate(self, node: int) -> None:
        _ip("link", "set", self.root_veth(node), "down")

    def heal(self, node: int) -> None:
        _ip("link", "set", self.root_veth(node), "up")

    def close(self) -> None:
        for link in reversed(self.created_links):
            _ip("link", "del", link, check=False)
        self.created_links.clear()
        for ns in reversed(self.created_ns):
            _ip("netns", "del", ns, check=False)
        self.created_ns.clear()
        if self in _open:
            _open.remove(self)


@atexit.register
def _close_leftovers() -> None:
    for net in list(_open):
        net.close()
