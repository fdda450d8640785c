#!/bin/sh
# Anyone (a recruiter, say): check a credential the service signed, without an account.
# POST /verify takes either the credential itself, {"credential": {...}}, or the id or short
# code of an export, {"exportId": "..."}. The answer says, for the credential and each claim
# in it: signature valid, issuer key known, expired or not, revoked or not.
#
#   examples/verifier/verify.sh passport-credential.json     (made by citizen/export.sh)
set -eu
BASE_URL=${BASE_URL:-http://127.0.0.1:8000}
credential=${1:-passport-credential.json}
{ printf '{"credential": '; cat "$credential"; printf '}'; } |
  curl -sS --fail-with-body "$BASE_URL/verify" -H "Content-Type: application/json" --data-binary @-
