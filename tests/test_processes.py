"""The embedded PostgreSQL lives exactly as long as the `passport` processes using it: real
processes, real signals.

`passport serve` stops it on SIGTERM (which uvicorn re-raises after its graceful shutdown, so
atexit alone never ran) and on SIGINT; a one-off command stops the one it started; a restart
right after a `kill -9` starts although the dead postmaster's PID still exists (as a zombie);
`passport db stop` stops one left behind. One data directory for the module, migrated once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from service.db.embedded import EmbeddedPostgres, ensure_database, server_state
from service.db.migrate import upgrade_async
from tests.test_resilience import _free_port, _wait_live

STOPPED = "Embedded PostgreSQL stopped."


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory whose embedded server holds a migrated `passport` database."""
    folder = tmp_path_factory.mktemp("embedded") / ".passport"
    embedded = EmbeddedPostgres(folder, quiet=True)
    try:

        async def migrate() -> None:
            url = await ensure_database(embedded.url(), "passport")
            await upgrade_async(url.render_as_string(hide_password=False))

        asyncio.run(migrate())
    finally:
        embedded.stop()
    yield folder
    stop_everything(folder / "pgdata")


def stop_everything(pgdata: Path) -> None:
    """Whatever a failed test left running ends here, not with the suite."""
    state = server_state(pgdata)
    if state.postmaster is not None:
        process = psutil.Process(state.postmaster)
        process.send_signal(signal.SIGINT)
        process.wait(30)


def environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSPORT_")}
    env.pop("XDG_RUNTIME_DIR", None)  # the wheel's platformdirs warned on every command
    return {**env, "PASSPORT_DATA_DIR": str(data_dir), "PASSPORT_WEBHOOK_DISPATCHER": "false"}


def passport(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=environment(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )


def serve(data_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    command = [sys.executable, "-m", "service.cli", "serve", "--no-migrate", "--port", str(port)]
    process = subprocess.Popen(
        command, env=environment(data_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    _wait_live(port, process)
    return process, port


def postmaster(data_dir: Path) -> int:
    running = server_state(data_dir / "pgdata").postmaster
    assert running is not None, "no embedded PostgreSQL is running"
    return running


def assert_stopped(data_dir: Path) -> None:
    state = server_state(data_dir / "pgdata")
    assert (state.postmaster, state.stale_pid) == (None, None), state
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()


def ended(process: subprocess.Popen[bytes]) -> str:
    try:
        output = process.communicate(timeout=60)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
    return output


def test_a_one_off_command_stops_the_server_it_started(data_dir: Path) -> None:
    assert_stopped(data_dir)
    result = passport(data_dir, "purge-retained")
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"removed"' in result.stdout
    assert STOPPED in result.stderr
    assert "XDG_RUNTIME_DIR" not in result.stderr
    assert_stopped(data_dir)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_its_server_when_it_is_stopped(data_dir: Path, signum: int) -> None:
    process, _ = serve(data_dir)
    try:
        server = postmaster(data_dir)
        status = passport(data_dir, "db", "status")
        assert f"Running (PID {server})" in status.stdout and str(process.pid) in status.stdout
        in_use = passport(data_dir, "db", "stop")  # it is serve's: not stopped under it
        assert in_use.returncode == 1 and "in use by passport process" in in_use.stderr
        process.send_signal(signum)
        output = ended(process)
    finally:
        if process.poll() is None:
            process.kill()
    if signum == signal.SIGTERM:  # still reported as ended by SIGTERM, as supervisors expect
        assert process.returncode == -signal.SIGTERM, output[-2000:]
    assert "Application shutdown complete" in output, output[-2000:]
    assert STOPPED in output, output[-2000:]
    assert not psutil.pid_exists(server) or psutil.Process(server).status() == "zombie"
    assert_stopped(data_dir)


def test_a_restart_right_after_kill_9_starts_and_a_left_over_server_can_be_stopped(
    data_dir: Path,
) -> None:
    first, _ = serve(data_dir)
    dead = postmaster(data_dir)
    first.kill()
    os.kill(dead, signal.SIGKILL)
    ended(first)
    # The postmaster's PID lives on for a moment (a zombie until reaped), named by its PID
    # file and its socket's lock file; the wheel took that for a running server.
    second, _ = serve(data_dir)
    try:
        assert postmaster(data_dir) != dead
        second.kill()  # killed outright: nothing stops the server this time
        output = ended(second)
        assert f"A dead embedded PostgreSQL (PID {dead})" in output, output[-2000:]
        left = postmaster(data_dir)
        status = passport(data_dir, "db", "status")
        assert f"Running (PID {left})" in status.stdout
        assert "left over" in status.stdout
        stop = passport(data_dir, "db", "stop")
        assert stop.returncode == 0, stop.stderr
        assert f"Stopped embedded PostgreSQL (PID {left})" in stop.stdout
        deadline = time.monotonic() + 10
        while psutil.pid_exists(left) and psutil.Process(left).status() != "zombie":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert_stopped(data_dir)
        again = passport(data_dir, "db", "stop")
        assert "No embedded PostgreSQL is running" in again.stdout
    finally:
        if second.poll() is None:
            second.kill()
        stop_everything(data_dir / "pgdata")
