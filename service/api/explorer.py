"""GraphiQL at `GET /graphql`, in development only, from files shipped in the package.

The page and its scripts come from ``service/api/graphiql/`` (GraphiQL and React vendored from
npm, see its README), never from a CDN: it works offline, and a browser loads nothing this
service did not ship, which the page's Content-Security-Policy holds it to. Production never
serves it (``Settings.dev_tools``). Introspection, which the explorer runs before anyone has
pasted a token, is let through without one while the tools are on (service/api/graphql.py).
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from service.api.problems import problem
from service.api.state import app_state

router = APIRouter()

ASSETS_PATH = "/graphql/explorer"
# Served gzipped as stored; anything else is this project's own, small and plain.
VENDORED = {
    "graphiql.min.js": "text/javascript; charset=utf-8",
    "graphiql.min.css": "text/css; charset=utf-8",
    "react.production.min.js": "text/javascript; charset=utf-8",
    "react-dom.production.min.js": "text/javascript; charset=utf-8",
}
OWN = {
    "explorer.js": "text/javascript; charset=utf-8",
    "explorer.css": "text/css; charset=utf-8",
}
# Only this origin; GraphiQL sets inline styles and embeds its fonts as data: URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "font-src 'self' data:; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
WELCOME = """\
# Competence Passport: GraphiQL (development only)
#
# 1. Tokens for the demo organisations and citizen:  .venv/bin/passport token demo
# 2. Put one in Headers below: {"Authorization": "Bearer eyJ..."}
# 3. Run with Ctrl+Enter. The schema and its docs (the book icon) need no token.
#
# An example of every task, for every kind of caller: the examples/ folder of the
# repository. This one is the demo citizen's own passport (the "citizen" token).

query MyPassport {
  me {
    passport {
      competences {
        competence { label(lang: EN) { text } uri }
        status
        lastUsedOn
        claims { issuer { name kind } assessmentMethod acquiredOn }
      }
    }
  }
}
"""
HEADERS = '{\n  "Authorization": "Bearer "\n}'


@cache
def _file(name: str) -> bytes:
    return (resources.files("service.api") / "graphiql" / name).read_bytes()


def explorer_page() -> HTMLResponse:
    config = json.dumps({"url": "/graphql", "query": WELCOME, "headers": HEADERS})
    page = (
        _file("index.html")
        .decode()
        .replace("{assets}", ASSETS_PATH)
        .replace("{config}", config.replace("<", "\\u003c"))  # no </script> inside
    )
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@router.get(ASSETS_PATH + "/{name}", include_in_schema=False)
async def explorer_asset(request: Request, name: str) -> Response:
    if not app_state(request).settings.dev_tools or name not in VENDORED.keys() | OWN.keys():
        return problem(404, "NOT_FOUND", "not found")
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=3600"}
    if name in OWN:
        return Response(_file(name), media_type=OWN[name], headers=headers)
    stored = _file(name + ".gz")
    headers["Vary"] = "Accept-Encoding"
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        headers["Content-Encoding"] = "gzip"
        return Response(stored, media_type=VENDORED[name], headers=headers)
    return Response(gzip.decompress(stored), media_type=VENDORED[name], headers=headers)
