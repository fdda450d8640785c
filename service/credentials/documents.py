"""The JSON-LD document loader: the shipped contexts, and nothing from the network."""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from pyld.jsonld import JsonLdError

VC_V2 = "https://www.w3.org/ns/credentials/v2"
OB_V3 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
OB_EXTENSIONS = "https://purl.imsglobal.org/spec/ob/v3p0/extensions.json"
CLR_V2 = "https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json"
DATA_INTEGRITY_V2 = "https://w3id.org/security/data-integrity/v2"
MULTIKEY_V1 = "https://w3id.org/security/multikey/v1"

FILES = {
    VC_V2: "credentials-v2.jsonld",
    DATA_INTEGRITY_V2: "data-integrity-v2.jsonld",
    MULTIKEY_V1: "multikey-v1.jsonld",
    OB_V3: "ob-v3p0-context-3.0.3.json",
    OB_EXTENSIONS: "ob-v3p0-extensions.json",
    CLR_V2: "clr-v2p0-context-2.0.1.json",
}

# The Europass (ELM v3) export's contexts: VC 1.1 and ELM's application profile. Loaded only
# by ``load_elm_document``, so nothing signed or verified can use them.
VC_V1 = "https://www.w3.org/2018/credentials/v1"
ELM_EDC_AP = "http://data.europa.eu/snb/model/context/edc-ap"
ELM_FILES = {VC_V1: "credentials-v1.jsonld", ELM_EDC_AP: "edc-ap-context.jsonld"}


def _read(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    folder = resources.files("service.credentials") / "contexts"
    return {url: json.loads((folder / name).read_text("utf-8")) for url, name in files.items()}


@cache
def contexts() -> dict[str, dict[str, Any]]:
    return _read(FILES)


@cache
def elm_contexts() -> dict[str, dict[str, Any]]:
    return _read(ELM_FILES)


def load_document(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld's loader: an exact URL of a shipped context, else an error (never a fetch).
    The tag "static" lets pyld keep the processed context across calls (without it, pyld
    processes every context again in each operation, most of the time of a verification)."""
    return _load(contexts(), url)


def load_elm_document(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``load_document`` for Europass documents: the ELM contexts, and nothing else."""
    return _load(elm_contexts(), url)


def _load(known_contexts: dict[str, dict[str, Any]], url: str) -> dict[str, Any]:
    known = known_contexts.get(url)
    if known is None:
        raise JsonLdError(
            f"context {url!r} is not one this service knows",
            "jsonld.LoadDocumentError",
            code="loading document failed",
        )
    return {
        "contextUrl": None,
        "documentUrl": url,
        "document": copy.deepcopy(known),
        "tag": "static",
    }
