"""Databases for the tests: on one PostgreSQL server, or on every node of a Citus cluster.

``PASSPORT_TEST_CITUS_URL`` names a Citus coordinator whose workers are registered (in its
maintenance database). Citus does not create databases on the workers, and its node list is
kept per database, so each test database is made on every node, given the extension (workers
first: adding a node copies metadata to it), and told where the coordinator and the workers
are. The schema is then placed by ``passport distribute``'s code, as an operator would.
"""

from __future__ import annotations

import os

import asyncpg
from sqlalchemy.engine import URL, make_url

from service.db.embedded import asyncpg_dsn

CITUS_URL = "PASSPORT_TEST_CITUS_URL"
NO_CITUS = f"runs on a Citus cluster only: set {CITUS_URL} to a coordinator with workers"


def citus_server() -> URL | None:
    """The Citus coordinator's maintenance database, when the tests are given one."""
    configured = os.environ.get(CITUS_URL)
    return make_url(configured).set(drivername="postgresql+asyncpg") if configured else None


def on_citus(server: URL) -> bool:
    cluster = citus_server()
    return cluster is not None and (server.host, server.port) == (cluster.host, cluster.port)


async def _nodes(server: URL) -> tuple[tuple[str, int], list[tuple[str, int]]]:
    """(the coordinator, the workers) as the cluster's maintenance database registers them."""
    conn = await asyncpg.connect(asyncpg_dsn(server))
    try:
        rows = await conn.fetch(
            "SELECT nodename, nodeport, groupid FROM pg_dist_node "
            "WHERE noderole = 'primary' AND isactive ORDER BY groupid, nodename, nodeport"
        )
    finally:
        await conn.close()
    coordinator = next(
        ((r["nodename"], r["nodeport"]) for r in rows if r["groupid"] == 0),
        (server.host or "127.0.0.1", server.port or 5432),
    )
    workers = [(r["nodename"], r["nodeport"]) for r in rows if r["groupid"] != 0]
    if not workers:
        raise RuntimeError(f"{CITUS_URL}: the coordinator has no workers registered")
    return coordinator, workers


async def _execute(url: URL, *statements: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def create_database(server: URL, name: str) -> URL:
    """A new empty database (on every node of a Citus cluster); its URL on ``server``."""
    if not on_citus(server):
        await _execute(server, f'CREATE DATABASE "{name}"')
        return server.set(database=name)
    (host, port), workers = await _nodes(server)
    for worker_host, worker_port in [*workers, (host, port)]:
        node = server.set(host=worker_host, port=worker_port)
        await _execute(node, f'CREATE DATABASE "{name}"')
        await _execute(node.set(database=name), "CREATE EXTENSION citus")
    await _execute(
        server.set(database=name),
        f"SELECT citus_set_coordinator_host('{host}', {port})",
        *(f"SELECT citus_add_node('{h}', {p})" for h, p in workers),
    )
    return server.set(database=name)


async def drop_database(server: URL, name: str) -> None:
    """FORCE: each node's Citus maintenance daemon keeps connections into it on the others."""
    nodes = [server]
    if on_citus(server):
        _, workers = await _nodes(server)
        nodes += [server.set(host=h, port=p) for h, p in workers]
    for node in nodes:
        await _execute(node, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rendered(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def server_of(database_url: str) -> URL:
    """The maintenance database of the server (or cluster) a test database is on."""
    return make_url(database_url).set(drivername="postgresql+asyncpg", database="postgres")
