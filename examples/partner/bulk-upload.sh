#!/bin/sh
# Partner: upload claims in bulk, as NDJSON (one IssueClaimInput per line) or CSV, up to
# 100,000 rows. The answer is NDJSON too: a line per row (accepted, duplicate or rejected with
# the fields at fault, never repeating a national number), then a summary line. The third row
# of claims.ndjson is refused on purpose (its INSZ check digits are wrong); the others are kept.
# Sending the same file again under the same Idempotency-Key returns the first report.
#
#   TOKEN=<a partner's token, e.g. demo-school's from `passport token demo`> examples/partner/bulk-upload.sh
set -eu
BASE_URL=${BASE_URL:-http://127.0.0.1:8000}
here=$(dirname "$0")

curl -sS --fail-with-body "$BASE_URL/claims:bulk" \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/x-ndjson" \
  -H "Idempotency-Key: example-upload-2026-01" \
  --data-binary "@$here/claims.ndjson"

curl -sS --fail-with-body "$BASE_URL/claims:bulk" \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: text/csv" \
  --data-binary "@$here/claims.csv"
