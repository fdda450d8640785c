"""Signed-export benchmark: citizens with 200 and 50 verified claims download the signed
credential (a CLR 2.0 holding one signed Open Badge per claim) and the PDF CV attachment; a
recruiter verifies the credential and fetches a status list. Every figure is printed beside
the yardstick from the same run: one eddsa-rdfc-2022 signature of a one-claim
AchievementCredential.

Run: `.venv/bin/python bench/exports.py`. Starts a fresh embedded PostgreSQL unless
PASSPORT_BENCH_DATABASE_URL names a server; drives the application in-process over HTTP
(authentication, the passport read and its access record, status positions, signing,
typesetting), one request at a time: the figures are what one user waits.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pypdf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.core import bench_database, pct, seed
from bench.matching import ISSUE, _skills_of_popular_occupations
from service.app import create_app
from service.auth.keys import load_or_create_dev_key
from service.auth.tokens import mint_dev_token
from service.db.engine import create_engine
from service.db.migrate import upgrade_async
from service.settings import Settings
from service.taxonomy.esco_import import SHIPPED_ESCO_DIR, import_esco
from tests import factories


async def _timed(n: int, call: Any) -> tuple[list[float], Any]:
    latencies, last = [], None
    for _ in range(n):
        started = time.perf_counter()
        last = await call()
        latencies.append(time.perf_counter() - started)
    return latencies, last


def yardstick(document: dict[str, Any], rounds: int = 50) -> dict[str, float]:
    """One eddsa-rdfc-2022 signature of a one-claim AchievementCredential, the unit every
    figure here is set against: through the service's compiled shapes, and through plain
    pyld (what a signer without them pays), p50 in ms."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from service.credentials import integrity, rdf

    unsigned = {k: v for k, v in document.items() if k != "proof"}
    key = Ed25519PrivateKey.generate()
    method = "did:web:bench.invalid#key"
    integrity.sign(unsigned, key, method, unsigned["validFrom"])  # its shape compiled once

    def compiled() -> None:
        integrity.sign(unsigned, key, method, unsigned["validFrom"])

    def plain() -> None:
        options = {
            "type": integrity.PROOF_TYPE,
            "cryptosuite": integrity.CRYPTOSUITE,
            "created": unsigned["validFrom"],
            "verificationMethod": method,
            "proofPurpose": "assertionMethod",
        }
        key.sign(integrity._hash_data(unsigned, options, rdf.reference_canonical))

    figures = {}
    for name, call in (("compiled", compiled), ("pyld", plain)):
        latencies = []
        for _ in range(rounds):
            started = time.perf_counter()
            call()
            latencies.append(time.perf_counter() - started)
        figures[name] = round(pct(latencies, 50), 2)
    return figures


Measure = Callable[
    [httpx.AsyncClient, dict[str, str], Settings, argparse.Namespace], Awaitable[dict[str, Any]]
]


async def run_sizes(
    args: argparse.Namespace, name: str, measure: Measure, **extra: Any
) -> dict[str, Any]:
    """A fresh database with ESCO and the demo partner, the app in-process, and for each size a
    new citizen given that many verified claims before ``measure`` runs as them: what the
    export and wallet benches share."""
    workdir = Path(tempfile.mkdtemp(prefix=f"passport-bench-{name}-"))
    sizes = sorted(set(args.claims), reverse=True)
    figures: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "requests": args.requests,
        "sizes": {},
        **extra,
    }
    async with bench_database(workdir) as url:
        await upgrade_async(url)
        engine = create_engine(url)
        await import_esco(engine, SHIPPED_ESCO_DIR)
        await engine.dispose()
        settings = Settings(
            database_url=url,
            data_dir=workdir / "app",
            insz_hmac_key="b" * 48,
            rate_limits=dict.fromkeys(
                ("partner", "reader", "citizen", "verifier"), "100000000/minute"
            ),
            log_level="WARNING",
        )
        await seed(url, settings)
        key = load_or_create_dev_key(settings.data_dir)
        partner = mint_dev_token(
            key, settings, subject="bench-client", client_id="bench-client", scopes=["claims:write"]
        )
        skills, _ = await _skills_of_popular_occupations(url, sizes[0])
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=120
            ) as http:
                for n in sizes:
                    citizen = factories.insz()
                    for uri in skills[:n]:
                        response = await http.post(
                            "/graphql",
                            json={
                                "query": ISSUE,
                                "variables": {"input": factories.claim_input(citizen, uri)},
                            },
                            headers={"Authorization": f"Bearer {partner}"},
                        )
                        issued = response.json()["data"]["issueClaim"]["__typename"]
                        assert issued == "ClaimIssued"
                    me = {
                        "Authorization": f"Bearer {mint_dev_token(key, settings, subject=citizen)}"
                    }
                    size = {"claims": n, **await measure(http, me, settings, args)}
                    figures["sizes"][n] = size
                    figures.setdefault("yardstick_ms", size.pop("yardstick"))
    return figures


async def measure_exports(
    http: httpx.AsyncClient, me: dict[str, str], settings: Settings, args: argparse.Namespace
) -> dict[str, Any]:
    async def credential() -> httpx.Response:
        response = await http.get("/passports/me/credential", headers=me)
        assert response.status_code == 200, response.text
        return response

    async def pdf() -> httpx.Response:
        response = await http.get("/passports/me/cv.pdf?lang=nl", headers=me)
        assert response.status_code == 200, response.text
        return response

    await credential()  # warm: shapes compiled, the template read
    await pdf()
    exports, signed = await _timed(args.requests, credential)
    pdfs, typeset = await _timed(args.requests, pdf)
    document = signed.json()

    async def verify() -> None:
        response = await http.post("/verify", json={"credential": document})
        assert response.json()["verified"] is True, response.text

    verifications, _ = await _timed(args.requests, verify)
    status_url = document["credentialStatus"]["statusListCredential"]
    path = status_url.split("/credentials/", 1)[1]

    async def status_list() -> None:
        response = await http.get(f"/credentials/{path}")
        assert response.status_code == 200

    lists, _ = await _timed(args.requests * 4, status_list)
    nested = document["credentialSubject"]["verifiableCredential"][0]
    return {
        "credential_bytes": len(signed.content),
        "pdf_bytes": len(typeset.content),
        "pdf_pages": len(pypdf.PdfReader(io.BytesIO(typeset.content)).pages),
        "credential_export_p50_ms": round(pct(exports, 50)),
        "credential_export_max_ms": round(max(exports) * 1000),
        "pdf_export_p50_ms": round(pct(pdfs, 50)),
        "pdf_export_max_ms": round(max(pdfs) * 1000),
        "verify_p50_ms": round(pct(verifications, 50)),
        "status_list_p50_ms": round(pct(lists, 50), 1),
        "yardstick": yardstick(nested),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, nargs="+", default=[200, 50])
    parser.add_argument("--requests", type=int, default=5)
    figures = asyncio.run(run_sizes(parser.parse_args(), "exports", measure_exports))
    print(json.dumps(figures, indent=2))
    unit = figures["yardstick_ms"]
    print(
        f"yardstick, one eddsa-rdfc-2022 signature of a one-claim AchievementCredential: "
        f"{unit['compiled']} ms (compiled shapes), {unit['pyld']} ms (plain pyld)"
    )
    goals = {200: (500, 1500), 50: (125, 375)}
    for n, size in sorted(figures["sizes"].items(), reverse=True):
        credential_goal, pdf_goal = goals.get(n, (None, None))
        for label, key, goal in (
            ("signed credential", "credential_export_p50_ms", credential_goal),
            ("PDF with credential", "pdf_export_p50_ms", pdf_goal),
            ("POST /verify", "verify_p50_ms", None),
        ):
            value = size[key]
            ratio = value / unit["pyld"]
            target = f"  (goal {goal} ms)" if goal else ""
            line = f"{n:>3} claims, {label:<20}: p50 {value:>5} ms"
            print(f"{line} = {ratio:5.1f} plain pyld signatures{target}")
    print(f"status list (131,072 entries): p50 {size['status_list_p50_ms']} ms")
