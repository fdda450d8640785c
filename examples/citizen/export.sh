#!/bin/sh
# Citizen: take your passport along, as files.
#   passport-data.json        everything held about you (GET /me/export)
#   passport-cv.pdf           the CV attachment, in English (GET /passports/me/cv.pdf?lang=en)
#   passport-credential.json  the signed credential anyone can verify (verifier/verify.sh)
#
#   TOKEN=<the citizen's token from `passport token demo`> examples/citizen/export.sh
set -eu
BASE_URL=${BASE_URL:-http://127.0.0.1:8000}
auth="Authorization: Bearer $TOKEN"
curl -sS --fail-with-body "$BASE_URL/me/export" -H "$auth" -o passport-data.json
curl -sS --fail-with-body "$BASE_URL/passports/me/cv.pdf?lang=en" -H "$auth" -o passport-cv.pdf
curl -sS --fail-with-body "$BASE_URL/passports/me/credential" -H "$auth" -o passport-credential.json
ls -l passport-data.json passport-cv.pdf passport-credential.json
