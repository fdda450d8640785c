"""Worker processes that each listen on a socket of their own, so connections are spread.

uvicorn's workers share the parent's one listening socket, and whichever worker wakes first
accepts every pending connection (asyncio takes up to the whole backlog at once). A burst of
connections, as a load balancer's or a client's pool opens them, then lands on one worker
while the others idle: `bench/core.py` measured one of two workers doing all the work of 16
keep-alive clients. Here each worker listens on a socket of its own, bound to the same
address with SO_REUSEPORT, and the kernel hands each new connection to one of them by a hash
of its addresses, as nginx's and HAProxy's workers are set up.

uvicorn's supervisor is kept as it is (health checks, restarts, signals): the list of
sockets it hands each worker process holds one ``_OwnSocket``, which is pickled to the worker
as the instructions for a new listening socket, not as the parent's socket.

The cost: connections waiting in a worker's queue when that worker stops (it died, or a
SIGHUP or SIGTTOU to the parent replaced or retired it) are reset (the kernel does not hand
them to another), where a shared socket kept them for the next worker. That is rare, and a
client retries a reset connection. Linux only: other systems take SO_REUSEPORT but do not
spread connections with it, so there the workers share uvicorn's one socket as before.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import cast

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

CAN_SPREAD = sys.platform == "linux"
logger = logging.getLogger("passport.serve")


def _bound(host: str, port: int, *, reuse_addr: bool = True) -> socket.socket:
    """A socket bound to the address with SO_REUSEPORT, not yet listening."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    if reuse_addr:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def worker_socket(host: str, port: int) -> socket.socket:
    """A worker's own socket; if it cannot have one, the worker ends as failing to start, so
    uvicorn's supervisor stops rather than starting it again and again."""
    try:
        return _bound(host, port)
    except OSError as exc:
        # Before the worker configures logging: Python's last-resort handler writes to stderr.
        logger.error("cannot listen on %s:%s: %s", host, port, exc.strerror or exc)
        sys.exit(STARTUP_FAILURE)


class _OwnSocket:
    """Unpickled in a worker process, a socket of that worker's own on the address."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def __reduce__(self) -> tuple[object, tuple[str, int]]:
        return worker_socket, (self.host, self.port)


def reserve(host: str, port: int) -> socket.socket:
    """The address, held for the workers by a socket that never listens (so the kernel never
    gives it a connection); OSError if anything holds it already. Checked first without
    SO_REUSEPORT: with it, a second server of the same user would quietly share the port.
    The held socket has no SO_REUSEADDR, so a second server's check fails while the workers
    are still starting, too."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        port = probe.getsockname()[1]  # the one the kernel chose, if asked for port 0
    return _bound(host, port, reuse_addr=False)


def run_workers(config: uvicorn.Config, held: socket.socket) -> None:
    """``config.workers`` processes under uvicorn's supervisor, each listening on its own
    socket on the address ``held`` reserved (``reserve``)."""
    try:
        host, port = held.getsockname()[:2]
        sockets = cast("list[socket.socket]", [_OwnSocket(host, port)])
        Multiprocess(config, sockets=sockets).run()
    finally:
        held.close()
