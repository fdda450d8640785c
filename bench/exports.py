"""Signed-export benchmark: a citizen with 200 verified claims downloads the signed
credential (CLR 2.0 with 200 signed Open Badges) and the PDF CV attachment; a recruiter
verifies the credential and fetches a status list.

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


async def main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="passport-bench-exports-"))
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
        citizen = factories.insz()
        me = {"Authorization": f"Bearer {mint_dev_token(key, settings, subject=citizen)}"}
        skills, _ = await _skills_of_popular_occupations(url, args.claims)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=120
            ) as http:
                for uri in skills:
                    response = await http.post(
                        "/graphql",
                        json={
                            "query": ISSUE,
                            "variables": {"input": factories.claim_input(citizen, uri)},
                        },
                        headers={"Authorization": f"Bearer {partner}"},
                    )
                    assert response.json()["data"]["issueClaim"]["__typename"] == "ClaimIssued"

                async def credential() -> httpx.Response:
                    response = await http.get("/passports/me/credential", headers=me)
                    assert response.status_code == 200, response.text
                    return response

                async def pdf() -> httpx.Response:
                    response = await http.get("/passports/me/cv.pdf?lang=nl", headers=me)
                    assert response.status_code == 200, response.text
                    return response

                await credential()  # warm: contexts processed, templates compiled
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
    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "claims": len(skills),
        "requests": args.requests,
        "credential_bytes": len(signed.content),
        "pdf_bytes": len(typeset.content),
        "pdf_pages": len(pypdf.PdfReader(io.BytesIO(typeset.content)).pages),
        "credential_export_p50_ms": round(pct(exports, 50)),
        "credential_export_max_ms": round(max(exports) * 1000),
        "pdf_export_p50_ms": round(pct(pdfs, 50)),
        "pdf_export_max_ms": round(max(pdfs) * 1000),
        "verify_p50_ms": round(pct(verifications, 50)),
        "status_list_p50_ms": round(pct(lists, 50), 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--requests", type=int, default=5)
    figures = asyncio.run(main(parser.parse_args()))
    print(json.dumps(figures, indent=2))
    n = figures["claims"]
    print(f"signed credential, {n} claims : p50 {figures['credential_export_p50_ms']} ms")
    print(f"PDF with credential, {n} claims: p50 {figures['pdf_export_p50_ms']} ms")
    print(f"POST /verify of that credential: p50 {figures['verify_p50_ms']} ms")
    print(f"status list (131,072 entries)  : p50 {figures['status_list_p50_ms']} ms")
