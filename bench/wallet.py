"""Wallet benchmark: citizens with 200 and 50 verified claims send their passport to a wallet
over OpenID4VCI (offer, token, nonce, credential) as an SD-JWT VC and as a holder-bound CLR,
and export it to Europass. Every figure is printed beside the yardstick from the same run: one
eddsa-rdfc-2022 signature of a one-claim AchievementCredential through plain pyld
(``bench/exports.py``), and one raw Ed25519 JWT signature.

Run: `.venv/bin/python bench/wallet.py`. Starts a fresh embedded PostgreSQL unless
PASSPORT_BENCH_DATABASE_URL names a server; drives the application in-process over HTTP, one
request at a time: the figures are what one wallet waits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.core import pct
from bench.exports import run_sizes, yardstick
from service.settings import Settings
from tests.wallet_keys import WalletKey

PRE_AUTH = "urn:ietf:params:oauth:grant-type:pre-authorized_code"


def jwt_yardstick(rounds: int = 200) -> float:
    """p50 ms of one EdDSA JWT signature of a small payload (PyJWT, cryptography)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    latencies = []
    for n in range(rounds):
        started = time.perf_counter()
        jwt.encode({"n": n, "iss": "https://bench.invalid"}, key, algorithm="EdDSA")
        latencies.append(time.perf_counter() - started)
    return round(pct(latencies, 50), 3)


async def measure_wallet(
    http: httpx.AsyncClient, me: dict[str, str], settings: Settings, args: argparse.Namespace
) -> dict[str, Any]:
    audience = settings.base_url
    phases: dict[str, list[float]] = {"offer": [], "token": [], "sd_jwt": [], "ldp_vc": []}
    sizes: dict[str, int] = {}
    for round_ in range(args.requests + 1):  # the first round warms up and is dropped
        started = time.perf_counter()
        made = await http.post("/passports/me/credential-offers", json={}, headers=me)
        assert made.status_code == 201, made.text
        offer = json.loads(
            parse_qs(urlsplit(made.json()["credentialOfferUri"]).query)["credential_offer"][0]
        )
        code = offer["grants"][PRE_AUTH]["pre-authorized_code"]
        offered = time.perf_counter()
        token = await http.post(
            "/oid4vci/token",
            data={
                "grant_type": PRE_AUTH,
                "pre-authorized_code": code,
                "tx_code": made.json()["txCode"],
            },
        )
        access = {"Authorization": f"Bearer {token.json()['access_token']}"}
        tokened = time.perf_counter()
        timings = {"offer": offered - started, "token": tokened - offered}
        for configuration, phase in (
            ("CompetencePassport_dc+sd-jwt", "sd_jwt"),
            ("CompetencePassport_ldp_vc", "ldp_vc"),
        ):
            begun = time.perf_counter()
            nonce = (await http.post("/oid4vci/nonce")).json()["c_nonce"]
            proof = WalletKey().proof(audience=audience, nonce=nonce)
            answer = await http.post(
                "/oid4vci/credential",
                json={"credential_configuration_id": configuration, "proofs": {"jwt": [proof]}},
                headers=access,
            )
            assert answer.status_code == 200, answer.text
            timings[phase] = time.perf_counter() - begun
            sizes[phase] = len(answer.content)
        if round_:
            for phase, value in timings.items():
                phases[phase].append(value)
        else:
            clr = answer.json()["credentials"][0]["credential"]
    downloads = []
    for n in range(args.requests + 1):  # the same CLR, downloaded unbound: the reference
        started = time.perf_counter()
        response = await http.get("/passports/me/credential", headers=me)
        assert response.status_code == 200, response.text
        if n:
            downloads.append(time.perf_counter() - started)
    europass = []
    for n in range(args.requests + 1):
        started = time.perf_counter()
        response = await http.get("/passports/me/europass", headers=me)
        assert response.status_code == 200, response.text
        if n:
            europass.append(time.perf_counter() - started)
    return {
        "sd_jwt_bytes": sizes["sd_jwt"],
        "ldp_vc_bytes": sizes["ldp_vc"],
        "europass_bytes": len(response.content),
        **{f"{phase}_p50_ms": round(pct(values, 50)) for phase, values in phases.items()},
        "europass_p50_ms": round(pct(europass, 50)),
        "download_p50_ms": round(pct(downloads, 50)),
        "yardstick": yardstick(clr["credentialSubject"]["verifiableCredential"][0]),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, nargs="+", default=[200, 50])
    parser.add_argument("--requests", type=int, default=5)
    figures = asyncio.run(
        run_sizes(parser.parse_args(), "wallet", measure_wallet, jwt_yardstick_ms=jwt_yardstick())
    )
    print(json.dumps(figures, indent=2))
    unit = figures["yardstick_ms"]["pyld"]
    print(
        f"yardsticks: one eddsa-rdfc-2022 signature (plain pyld) {unit} ms; "
        f"one EdDSA JWT {figures['jwt_yardstick_ms']} ms"
    )
    for n, size in sorted(figures["sizes"].items(), reverse=True):
        for label, key in (
            ("offer", "offer_p50_ms"),
            ("token", "token_p50_ms"),
            ("nonce + SD-JWT VC", "sd_jwt_p50_ms"),
            ("nonce + CLR (ldp_vc)", "ldp_vc_p50_ms"),
            ("CLR download, unbound", "download_p50_ms"),
            ("Europass export", "europass_p50_ms"),
        ):
            value = size[key]
            ratio = value / unit
            print(f"{n:>3} claims, {label:<21}: p50 {value:>5} ms = {ratio:5.1f} pyld signatures")
