"""Two hosts inside a test: two network namespaces joined by a veth pair.

    host "a" (namespace fcPID-N-a)                host "b" (namespace fcPID-N-b)
    10.89.0.1/24 on va  ======= veth pair =======  vb, 10.89.0.2/24

- The addresses exist only inside the two namespaces, never on the
  machine's own interfaces: every pair is private to its test, so several
  can use the same addresses at once.
- Neighbour (ARP) entries are permanent: a pulled cable is then silence,
  as when a peer vanishes behind a router on the Internet, not a local
  "No route to host" once ARP gives up.
- `pull_cable("b")` sets b's end of the link down: b vanishes for a.
- Kernel settings such as net.ipv4.tcp_retries2 are per namespace
  (`sysctls=`), so a test can shorten the kernel's patience on one host
  without touching the machine's.

Needs root (`ip netns add`). Without it, a test that uses `two_hosts` is
skipped with a loud message, and fails under CI=true (as `require_tool`).
"""

from __future__ import annotations

import itertools
import os
import subprocess

import pytest

from harness import Forkchat, Proc, require_tool

ADDRESS = {"a": "10.89.0.1", "b": "10.89.0.2"}
DEVICE = {"a": "va", "b": "vb"}
_COUNTER = itertools.count(1)


def require_netns() -> str:
    """The path of ip(8), if this process can create network namespaces."""
    ip = require_tool("ip")
    problem = None
    if os.geteuid() != 0:
        problem = "not root"
    else:
        name = f"fc{os.getpid()}-probe"
        run = subprocess.run([ip, "netns", "add", name], capture_output=True, text=True, timeout=10)
        if run.returncode != 0:
            problem = f"ip netns add failed: {run.stderr.strip()}"
        else:
            subprocess.run([ip, "netns", "del", name], capture_output=True, timeout=10)
    if problem:
        message = f"!!! network namespaces unavailable ({problem}): the two-host network tests did NOT run !!!"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: they must run)")
        pytest.skip(message)
    return ip


class TwoHosts:
    """Two network namespaces, "a" and "b", joined by a veth pair."""

    def __init__(self, ip: str, sysctls: dict[str, dict[str, str]] | None = None):
        self.ip = ip
        tag = f"fc{os.getpid()}-{next(_COUNTER)}"
        self.netns = {"a": f"{tag}-a", "b": f"{tag}-b"}
        self.created: list[str] = []
        try:
            for host in "ab":
                self._ip("netns", "add", self.netns[host])
                self.created.append(self.netns[host])
            self._ip("link", "add", "va", "netns", self.netns["a"], "type", "veth",
                     "peer", "name", "vb", "netns", self.netns["b"])
            for host in "ab":
                self._ip("-n", self.netns[host], "addr", "add", f"{ADDRESS[host]}/24", "dev", DEVICE[host])
                self._ip("-n", self.netns[host], "link", "set", "lo", "up")
                self._ip("-n", self.netns[host], "link", "set", DEVICE[host], "up")
            for host, other in (("a", "b"), ("b", "a")):
                mac = self._ip("-n", self.netns[other], "-br", "link", "show", DEVICE[other]).split()[2]
                self._ip("-n", self.netns[host], "neigh", "replace", ADDRESS[other], "lladdr", mac,
                         "dev", DEVICE[host], "nud", "permanent")
            for host, settings in (sysctls or {}).items():
                for key, value in settings.items():
                    self.run(host, ["sysctl", "-q", "-w", f"{key}={value}"])
        except BaseException:
            self.close()
            raise

    def _ip(self, *args) -> str:
        run = subprocess.run([self.ip, *args], capture_output=True, text=True, timeout=10)
        if run.returncode != 0:
            raise AssertionError(f"ip {' '.join(args)}: {run.stderr.strip()}")
        return run.stdout

    def prefix(self, host) -> list[str]:
        """The command that runs a program on `host`."""
        return [self.ip, "netns", "exec", self.netns[host]]

    def run(self, host, argv) -> str:
        """Runs a short command on `host`; returns its stdout."""
        run = subprocess.run([*self.prefix(host), *argv], capture_output=True, text=True, timeout=10)
        if run.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} on {host}: {run.stderr.strip()}")
        return run.stdout

    def forkchat(self, host, *args, **kwargs) -> Forkchat:
        return Forkchat(*args, prefix=self.prefix(host), **kwargs)

    def proc(self, host, argv, **kwargs) -> Proc:
        return Proc([*self.prefix(host), *argv], **kwargs)

    def pull_cable(self, host):
        """`host` vanishes: its end of the link goes down, without a word."""
        self._ip("-n", self.netns[host], "link", "set", DEVICE[host], "down")

    def sockets(self, host) -> str:
        """`ss -tnoi` on `host`: TCP sockets with their timers and TCP_INFO."""
        return self.run(host, ["ss", "-tnoi"])

    def close(self):
        for name in self.created:
            subprocess.run([self.ip, "netns", "del", name], capture_output=True, timeout=10)
        self.created = []


@pytest.fixture
def two_hosts():
    """A function that builds a TwoHosts (sysctls=...); all are removed after the test."""
    ip = require_netns()
    made: list[TwoHosts] = []

    def make(**kwargs) -> TwoHosts:
        hosts = TwoHosts(ip, **kwargs)
        made.append(hosts)
        return hosts

    yield make
    for hosts in made:
        hosts.close()
