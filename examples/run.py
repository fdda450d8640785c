"""Run one example operation against a running service and print the answer.

    .venv/bin/python examples/run.py partner/issue-claim
    .venv/bin/python examples/run.py partner/revoke-claim --set claimId=...
    .venv/bin/python examples/run.py share-link/shared-passport --token psl_...

The token is the demo one for the example's kind of caller (partner: demo-school, reader:
demo-employment-service, citizen, admin), from `passport token demo`, unless --token or $TOKEN
gives one. Variables come from the example's .json file; a value written {{name}} there comes
from an earlier step, given with --set name=value; {{inAMonth}} is filled in (30 days ahead).
Standard library only, so it runs with any Python 3.11.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Whose demo token each folder's examples use (the names `passport token demo` prints).
CALLERS = {
    "partner": "demo-school",
    "reader": "demo-employment-service",
    "citizen": "citizen",
    "admin": "admin",
}
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def computed() -> dict[str, str]:
    """Placeholders that need no earlier step."""
    in_a_month = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    return {"inAMonth": in_a_month.isoformat()}


def request_body(example: Path, values: dict[str, str]) -> dict[str, Any]:
    """The GraphQL request of ``example`` (its .graphql file; its .json variables, if any,
    with every {{name}} filled from ``values``)."""
    body: dict[str, Any] = {"query": example.with_suffix(".graphql").read_text()}
    variables = example.with_suffix(".json")
    if variables.exists():
        known = {**computed(), **values}

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in known:
                raise SystemExit(f"{variables.name} needs {{{{{name}}}}}: add --set {name}=...")
            return known[name]

        body["variables"] = json.loads(PLACEHOLDER.sub(fill, variables.read_text()))
    return body


def demo_token(caller: str) -> str:
    """``caller``'s token from `passport token demo` (next to this Python, or on PATH)."""
    beside = Path(sys.executable).parent / "passport"
    command = str(beside) if beside.exists() else shutil.which("passport") or "passport"
    done = subprocess.run([command, "token", "demo"], capture_output=True, text=True)
    if done.returncode != 0:  # no key or no demo data here: `passport token` says why
        raise SystemExit(f"`passport token demo` refused:\n{done.stderr}")
    lines = done.stdout.splitlines()
    tokens = dict(line.split(": ", 1) for line in lines if not line.startswith("#"))
    return tokens[caller]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("example", help="e.g. partner/issue-claim (under examples/)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--token", default=os.environ.get("TOKEN"))
    parser.add_argument("--url", default=os.environ.get("BASE_URL", "http://127.0.0.1:8000"))
    args = parser.parse_args(argv)
    example = (HERE / args.example).with_suffix("")
    if not example.with_suffix(".graphql").exists():
        parser.error(f"no example {args.example}: see examples/README.md")
    values = dict(item.split("=", 1) for item in args.set)
    token = args.token or demo_token(CALLERS[example.parent.name])
    request = urllib.request.Request(
        args.url.rstrip("/") + "/graphql",
        data=json.dumps(request_body(example, values)).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as refused:  # 401, 429, ...: the body says why
        answer = json.load(refused)
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 1 if answer.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
