"""Free TCP ports on 127.0.0.1 for the servers and workers the kit starts."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def port_free(port: int) -> bool:
    """Whether nothing listens on the port (one a server left in TIME_WAIT is free)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """Free ports below the kernel's ephemeral range, where no outgoing connection takes
    them between two starts (a server's folder keeps its address; workers bind theirs a
    moment after they are chosen); from that range if there is no room below it."""
    low = _ephemeral_low()
    rng = random.Random()
    ports: list[int] = []
    for _ in range(200 * count):
        if len(ports) == count or low <= _LOWEST_PORT:
            break
        port = rng.randrange(_LOWEST_PORT, low)
        if port not in ports and port_free(port):
            ports.append(port)
    socks = []
    try:
        while len(ports) < count:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


_LOWEST_PORT = 10000


def _ephemeral_low() -> int:
    """The first port of the kernel's range for outgoing connections (Linux)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default
