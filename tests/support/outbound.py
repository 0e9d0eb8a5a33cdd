"""The tests' peers listen on loopback, which Portlog's outbound connections may not reach by
default (adapters/outbound.py): these allow it. `Trap` is a listener that only tells whether
anything connected to it."""

from __future__ import annotations

import socket

from adapters.outbound import OutboundGuard

LOOPBACK = ("127.0.0.0/8", "::1/128")
LOOPBACK_ALLOWED = OutboundGuard(allow=LOOPBACK)


class Trap:
    """Listening sockets on one port of 127.0.0.1 and (where it can) ::1. They never accept:
    the kernel queues every connection made to them, which `connections()` then counts."""

    def __init__(self) -> None:
        self._sockets = [socket.create_server(("127.0.0.1", 0))]
        self.port = self._sockets[0].getsockname()[1]
        try:
            self._sockets.append(socket.create_server(("::1", self.port), family=socket.AF_INET6))
        except OSError:
            pass  # no IPv6 loopback here

    def connections(self) -> int:
        count = 0
        for listener in self._sockets:
            listener.setblocking(False)
            while True:
                try:
                    connection, _ = listener.accept()
                except BlockingIOError:
                    break
                connection.close()
                count += 1
        return count

    def close(self) -> None:
        for listener in self._sockets:
            listener.close()


def loopback_name() -> str | None:
    """A name other than `localhost` that resolves to loopback only (this machine's own, often)."""
    for name in (socket.gethostname(), "ip6-localhost", "localhost.localdomain"):
        try:
            found = {info[4][0] for info in socket.getaddrinfo(name, None)}
        except socket.gaierror:
            continue
        if name != "localhost" and found and all(a.startswith("127.") or a == "::1" for a in found):
            return name
    return None
