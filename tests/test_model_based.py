"""Model-based test: random sequences of claims, retries, revocations, supersessions and consent,
driven over HTTP against the real service, compared after every step with an in-memory model.

Actors per example, all fresh (new organisations, national numbers the service does not know,
so examples never see each other's data): three issuing organisations, three citizens, and a
public employment service that reads under the citizen's consent or under its legal basis.

Rules: issue (alone or as a batch of one), retry with the same ref and content (the same claim,
``created: false``), retry with the same ref and other content (``Conflict`` naming the claim),
revoke and supersede (by the issuer or by another organisation, of claims in any state), grant
consent (whole passport or chosen competences), retry it, withdraw it (by its citizen or
another), and reads that must be refused.

After every step (``service_matches_model``), for the citizens and issuers the step involved:
the citizen's own passport, the reader's consent read and legal-basis read, the issuer's
``issuedClaims`` equal the model (active exactly the claims neither revoked, superseded nor
expired; a superseded claim names its successor, which names it back; the reader sees nothing
without an active grant, exactly the granted competences with one); each ref is held by one
claim; ``verifyEventChains`` finds the chain intact with exactly the events the model expects.
Everyone else's views cannot change in that step; the end of each example checks them all.

Hypothesis rules are synchronous, so the service runs on an event loop of its own in a worker
thread (an anyio blocking portal): its own app and engine on the session's migrated database.

Budget: ``PASSPORT_MODEL_EXAMPLES`` (default 20) examples of up to ``PASSPORT_MODEL_STEPS``
(default 25) steps, derandomized. A long run (``-s`` prints the figures):

    PASSPORT_MODEL_EXAMPLES=300 .venv/bin/pytest -s -p no:logging tests/test_model_based.py
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from service.app import create_app
from service.auth.keys import load_or_create_dev_key
from service.settings import Settings
from tests import factories
from tests.conftest import grant_basis, make_partner
from tests.graphql_client import Api, Partner

EXAMPLES = int(os.environ.get("PASSPORT_MODEL_EXAMPLES", "20"))
STEPS = int(os.environ.get("PASSPORT_MODEL_STEPS", "25"))

ISSUER_KINDS = ("EDUCATION_PROVIDER", "EMPLOYER", "RECOGNITION_CENTRE")
N_CITIZENS = 3
COMPETENCES = (factories.PYTHON, factories.SQL, factories.TEAMWORK)
STATUS_ORDER = ("ACTIVE", "EXPIRED", "SUPERSEDED", "REVOKED")  # as the passport ranks them
T = TypeVar("T")

# --- GraphQL documents --------------------------------------------------------------------------

CLAIM_VIEW = (
    "id status supersedes supersededBy externalRef issuer { id } revocation { reason }"
    " competence { uri }"
)
ERRORS = "... on Error { code message } ... on Conflict { existingId }"
ISSUE = f"""
mutation($input: IssueClaimInput!) {{
  issueClaim(input: $input) {{
    __typename ... on ClaimIssued {{ created claim {{ {CLAIM_VIEW} }} }} {ERRORS}
  }}
}}"""
SUPERSEDE = f"""
mutation($input: SupersedeClaimInput!) {{
  supersedeClaim(input: $input) {{
    __typename ... on ClaimSuperseded {{ created claim {{ {CLAIM_VIEW} }} }} {ERRORS}
  }}
}}"""
ISSUE_MANY = f"""
mutation($inputs: [IssueClaimInput!]!) {{
  issueClaims(inputs: $inputs) {{
    __typename
    ... on ClaimsIssued {{
      accepted duplicates rejected
      results {{ __typename ... on ClaimIssued {{ created claim {{ {CLAIM_VIEW} }} }} {ERRORS} }}
    }}
    {ERRORS}
  }}
}}"""
REVOKE = f"""
mutation($input: RevokeClaimInput!) {{
  revokeClaim(input: $input) {{
    __typename ... on ClaimRevoked {{ claim {{ {CLAIM_VIEW} }} }} {ERRORS}
  }}
}}"""
GRANT = f"""
mutation($input: GrantAccessInput!) {{
  grantAccess(input: $input) {{
    __typename
    ... on AccessGranted {{
      created grant {{ id status competences {{ uri }} organisation {{ id }} }}
    }}
    {ERRORS}
  }}
}}"""
WITHDRAW = f"""
mutation($id: ID!) {{
  revokeAccess(id: $id) {{
    __typename ... on AccessRevoked {{ grant {{ id status revokedAt }} }} {ERRORS}
  }}
}}"""
PASSPORT_VIEW = f"""
  citizenId basis
  competences {{ competence {{ uri }} status distinctOrganisations claims {{ {CLAIM_VIEW} }} }}
"""
OWN = f"query {{ me {{ passport {{ {PASSPORT_VIEW} }} }} }}"
READ = f"""
query($citizen: CitizenRef!) {{
  passport(citizen: $citizen, purpose: "model check") {{
    __typename ... on Passport {{ {PASSPORT_VIEW} }} ... on Error {{ code }}
  }}
}}"""
CLAIM = f"""
query($id: ID!) {{
  claim(id: $id) {{ __typename ... on Claim {{ {CLAIM_VIEW} }} ... on Error {{ code }} }}
}}
"""
ISSUED = f"""
query {{
  issuedClaims(first: 100) {{ edges {{ node {{ {CLAIM_VIEW} }} }} pageInfo {{ hasNextPage }} }}
}}
"""
VERIFY = """
query($id: ID!) { verifyEventChains(citizenId: $id) { eventsChecked intact breaks { seq reason } } }
"""


def reader_batch(citizens: list[int]) -> str:
    """Citizens' passports as the reader sees them, under consent and under its legal basis,
    in one request (aliases ``consent<i>`` and ``legal<i>`` for variable ``c<i>``)."""
    params = ", ".join(f"$c{i}: CitizenRef!" for i in citizens)
    body = f"__typename ... on Passport {{ {PASSPORT_VIEW} }} ... on Error {{ code }}"
    fields = "\n".join(
        f'consent{i}: passport(citizen: $c{i}, purpose: "model check") {{ {body} }}\n'
        f'legal{i}: passport(citizen: $c{i}, purpose: "guidance interview", '
        f'legalBasis: "GUIDANCE") {{ {body} }}'
        for i in citizens
    )
    return f"query({params}) {{ {fields} }}"


def _in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


# --- The service on a loop of its own -------------------------------------------------------------


@dataclass
class Figures:
    examples: int = 0
    steps: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    checks: int = 0


class Service:
    """The app and its client, on an event loop in a worker thread; the machine calls in."""

    def __init__(self, portal: BlockingPortal, api: Api) -> None:
        self.portal = portal
        self.api = api
        self.figures = Figures()

    def run(self, work: Callable[[], Awaitable[T]]) -> T:
        return self.portal.call(_awaited, work)

    def gql(self, token: str, query: str, variables: dict[str, Any] | None = None) -> Any:
        """One request; a 5xx or a GraphQL error (not a typed error result) fails the test."""
        self.figures.requests += 1
        body = self.run(lambda: self.api.gql(token, query, variables))
        assert "errors" not in body, body
        return body["data"]


async def _awaited(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


@asynccontextmanager
async def _serving(settings: Settings) -> AsyncIterator[Api]:
    """An app of its own (the session's app lives on the session's loop), as ``api`` builds it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Api(http=http, key=load_or_create_dev_key(settings.data_dir), settings=settings)


@contextmanager
def running_service(settings: Settings) -> Iterator[Service]:
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(_serving(settings)) as api,
    ):
        yield Service(portal, api)


# --- The model --------------------------------------------------------------------------------


@dataclass
class ClaimModel:
    id: str
    issuer: int
    citizen: int
    competence: str
    ref: str
    mutation: str  # ISSUE or SUPERSEDE: how it was asked for, so a retry can ask again
    sent: dict[str, Any]  # the input as sent
    supersedes: str | None = None
    superseded_by: str | None = None
    revocation: str | None = None  # the reason of the first revocation
    expired: bool = False  # valid until a day long past

    @property
    def status(self) -> str:
        """As the service ranks them: revoked over superseded over expired."""
        if self.revocation is not None:
            return "REVOKED"
        if self.superseded_by is not None:
            return "SUPERSEDED"
        return "EXPIRED" if self.expired else "ACTIVE"


@dataclass
class GrantModel:
    id: str
    citizen: int
    scope: frozenset[str] | None  # None: the whole passport
    sent: dict[str, Any]
    revoked: bool = False


@dataclass
class CitizenModel:
    insz: str
    token: str
    exists: bool = False  # the service holds something about them
    citizen_id: str | None = None  # learned from their first passport that has one
    events: int = 0  # what their hash chain must hold


def claim_row(claim: dict[str, Any]) -> tuple[Any, ...]:
    reason = claim["revocation"]["reason"] if claim["revocation"] else None
    return (
        claim["status"],
        claim["supersedes"],
        claim["supersededBy"],
        claim["issuer"]["id"],
        reason,
    )


def seen_passport(passport: dict[str, Any]) -> dict[str, Any]:
    """A passport as the service shows it, in the model's terms; checks what holds regardless."""
    seen: dict[str, Any] = {}
    for pc in passport["competences"]:
        uri = pc["competence"]["uri"]
        assert uri not in seen, f"competence {uri} shown twice"
        claims = {c["id"]: c for c in pc["claims"]}
        assert len(claims) == len(pc["claims"]), "a claim shown twice"
        for c in pc["claims"]:
            assert c["externalRef"] is None, "the issuer's reference leaked into a passport"
            assert c["competence"]["uri"] == uri
            assert (c["status"] == "REVOKED") == (c["revocation"] is not None), c
            if c["supersededBy"] is not None:
                successor = claims.get(c["supersededBy"])
                assert successor is not None, "superseded by a claim not shown with it"
                assert successor["supersedes"] == c["id"]
        seen[uri] = {
            "status": pc["status"],
            "organisations": pc["distinctOrganisations"],
            "claims": {cid: claim_row(c) for cid, c in claims.items()},
        }
    return seen


class PassportMachine(RuleBasedStateMachine):
    """One example: fresh actors, an empty model, and the service compared after every step."""

    claims = Bundle("claims")
    grants = Bundle("grants")

    def __init__(self, service: Service) -> None:
        super().__init__()
        self.svc = service
        service.figures.examples += 1
        self.issuers: list[Partner]
        self.reader: Partner
        self.issuers, self.reader = service.run(self._actors)
        self.org_ids = [str(p.organisation_id) for p in self.issuers]
        self.citizens = [self._fresh_citizen() for _ in range(N_CITIZENS)]
        self.model_claims: dict[str, ClaimModel] = {}
        self.model_grants: dict[str, GrantModel] = {}
        # Whose views the next check reads: everyone's at the start, then those of the
        # citizens and issuers each step involved; everyone's again at the end.
        self.touched_citizens: set[int] = set(range(N_CITIZENS))
        self.touched_issuers: set[int] = set(range(len(self.issuers)))
        self.consistent = False  # the last step was checked and agreed with the model

    async def _actors(self) -> tuple[list[Partner], Partner]:
        api = self.svc.api
        made = await asyncio.gather(
            *(make_partner(api, kind=kind) for kind in ISSUER_KINDS),
            make_partner(api, kind="PUBLIC_EMPLOYMENT_SERVICE", scopes=("PASSPORTS_READ",)),
        )
        await grant_basis(api, made[-1])
        return list(made[:-1]), made[-1]

    def _fresh_citizen(self) -> CitizenModel:
        """National numbers are random; one the service already knows is drawn again."""
        while True:
            insz = factories.insz()
            token = self.svc.api.citizen(insz)
            if self.svc.gql(token, OWN)["me"]["passport"]["citizenId"] is None:
                return CitizenModel(insz, token)

    # --- helpers ---

    def _step(
        self, name: str, citizens: tuple[int, ...] = (), issuers: tuple[int, ...] = ()
    ) -> None:
        self.svc.figures.steps[name] += 1
        self.consistent = False
        self.touched_citizens.update(citizens)
        self.touched_issuers.update(issuers)

    def _ask(
        self, issuer: int, mutation: str, sent: dict[str, Any], batch: bool = False
    ) -> dict[str, Any]:
        """One claim request, alone or as a batch of one (``issueClaims``, the bulk path with
        its own statements), whose one result must read as the single mutation's would."""
        token = self.issuers[issuer].token
        if not batch:
            name = "issueClaim" if mutation is ISSUE else "supersedeClaim"
            result: dict[str, Any] = self.svc.gql(token, mutation, {"input": sent})[name]
            return result
        assert mutation is ISSUE
        payload = self.svc.gql(token, ISSUE_MANY, {"inputs": [sent]})["issueClaims"]
        assert payload["__typename"] == "ClaimsIssued", payload
        (result,) = payload["results"]
        counts = (payload["accepted"], payload["duplicates"], payload["rejected"])
        if result["__typename"] == "ClaimIssued":
            assert counts == ((1, 0, 0) if result["created"] else (0, 1, 0)), payload
        else:
            assert counts == (0, 0, 1), payload
        return result

    def _record(
        self,
        mutation: str,
        sent: dict[str, Any],
        issuer: int,
        status: str = "ACTIVE",
        batch: bool = False,
    ) -> str:
        """Ask for a new claim (issue or supersede) that the model says must be created."""
        payload = self._ask(issuer, mutation, sent, batch)
        assert payload["__typename"] in ("ClaimIssued", "ClaimSuperseded"), payload
        assert payload["created"] is True
        claim = payload["claim"]
        assert claim["status"] == status
        assert claim["issuer"]["id"] == self.org_ids[issuer]
        assert claim["externalRef"] == sent["externalRef"]
        assert claim["id"] not in self.model_claims
        return str(claim["id"])

    def _expected(self, citizen: int, scope: frozenset[str] | None) -> dict[str, Any]:
        groups: dict[str, list[ClaimModel]] = {}
        for claim in self.model_claims.values():
            if claim.citizen == citizen and (scope is None or claim.competence in scope):
                groups.setdefault(claim.competence, []).append(claim)
        return {
            uri: {
                "status": min((c.status for c in items), key=STATUS_ORDER.index),
                "organisations": len({c.issuer for c in items if c.status == "ACTIVE"}),
                "claims": {
                    c.id: (
                        c.status,
                        c.supersedes,
                        c.superseded_by,
                        self.org_ids[c.issuer],
                        c.revocation,
                    )
                    for c in items
                },
            }
            for uri, items in groups.items()
        }

    def _consent_scope(self, citizen: int) -> frozenset[str] | bool | None:
        """What the reader may see under consent: False nothing, None all, or a set."""
        active = [g for g in self.model_grants.values() if g.citizen == citizen and not g.revoked]
        if not active:
            return False
        if any(g.scope is None for g in active):
            return None
        return frozenset().union(*(g.scope or frozenset() for g in active))

    # --- rules: claims ---

    @rule(
        target=claims,
        issuer=st.integers(0, len(ISSUER_KINDS) - 1),
        citizen=st.integers(0, N_CITIZENS - 1),
        competence=st.sampled_from(COMPETENCES),
        level=st.sampled_from(["3", "5", "7", "expired"]),
        batch=st.booleans(),
    )
    def issue(self, issuer: int, citizen: int, competence: str, level: str, batch: bool) -> str:
        """A new claim, alone or in a batch; some were valid only until 2021 and show as
        expired, never active."""
        self._step("issue", (citizen,), (issuer,))
        expired = level == "expired"
        sent = factories.claim_input(
            self.citizens[citizen].insz,
            competence,
            proficiency={"scale": "EQF", "level": "5" if expired else level},
            **({"validUntil": "2021-01-01", "lastUsedOn": None} if expired else {}),
        )
        claim_id = self._record(ISSUE, sent, issuer, "EXPIRED" if expired else "ACTIVE", batch)
        self.model_claims[claim_id] = ClaimModel(
            claim_id, issuer, citizen, competence, sent["externalRef"], ISSUE, sent, expired=expired
        )
        self.citizens[citizen].exists = True
        self.citizens[citizen].events += 1
        return claim_id

    @rule(claim=claims, formatted=st.booleans(), batch=st.booleans())
    def retry_same(self, claim: str, formatted: bool, batch: bool) -> None:
        """The same request again (the INSZ perhaps written as the register prints it, a
        claim perhaps retried in a batch): the same claim, whatever happened to it since, and
        nothing new."""
        model = self.model_claims[claim]
        self._step("retry_same", (model.citizen,), (model.issuer,))
        sent = dict(model.sent)
        if formatted and "insz" in sent:
            n = sent["insz"]
            sent["insz"] = f"{n[:2]}.{n[2:4]}.{n[4:6]}-{n[6:9]}.{n[9:]}"
        result = self._ask(model.issuer, model.mutation, sent, batch and model.mutation is ISSUE)
        assert result["__typename"] in ("ClaimIssued", "ClaimSuperseded"), result
        assert result["created"] is False
        assert result["claim"]["id"] == claim
        assert result["claim"]["status"] == model.status

    @rule(claim=claims, data=st.data())
    def retry_changed(self, claim: str, data: st.DataObject) -> None:
        """Another request under a reference already used: the typed conflict, nothing written."""
        model = self.model_claims[claim]
        self._step("retry_changed", (model.citizen,), (model.issuer,))
        sent = dict(model.sent)
        if model.mutation is ISSUE:
            change = data.draw(
                st.sampled_from(["lastUsedOn", "competence", "citizen", "as_supersede"])
            )
        else:
            change = data.draw(st.sampled_from(["lastUsedOn", "context", "as_issue"]))
        mutation = model.mutation
        if change == "lastUsedOn":
            sent["lastUsedOn"] = (
                "2024-02-01" if sent["lastUsedOn"] != "2024-02-01" else "2024-03-01"
            )
        elif change == "context":
            sent["context"] = (sent.get("context") or "") + ", resit"
        elif change == "competence":
            others = [c for c in COMPETENCES if c != model.competence]
            sent["competenceUri"] = data.draw(st.sampled_from(others))
        elif change == "citizen":
            other = (model.citizen + data.draw(st.integers(1, N_CITIZENS - 1))) % N_CITIZENS
            sent["insz"] = self.citizens[other].insz
            self.touched_citizens.add(other)  # a conflict must not create them either
        elif change == "as_supersede":  # its own reference, as a claim replacing itself
            sent = {k: v for k, v in sent.items() if k not in ("insz", "competenceUri")}
            sent["claimId"] = claim
            mutation = SUPERSEDE
        else:  # the newer claim's reference, asked for as a plain new claim
            sent = {
                **{k: v for k, v in sent.items() if k != "claimId"},
                "insz": self.citizens[model.citizen].insz,
                "competenceUri": model.competence,
            }
            mutation = ISSUE
        batch = mutation is ISSUE and data.draw(st.booleans(), label="batch")
        result = self._ask(model.issuer, mutation, sent, batch)
        assert result["__typename"] == "Conflict", (change, batch, result)
        assert result["code"] == "CONFLICT"
        assert result["existingId"] == claim

    @rule(claim=claims, offset=st.sampled_from([0, 0, 1, 2]))
    def revoke(self, claim: str, offset: int) -> None:
        """Only the issuer revokes; a superseded claim cannot be; a second revocation is a no-op."""
        model = self.model_claims[claim]
        actor = (model.issuer + offset) % len(self.issuers)
        self._step("revoke", (model.citizen,), (model.issuer, actor))
        reason = f"withdrawn in step {sum(self.svc.figures.steps.values())}"
        result = self.svc.gql(
            self.issuers[actor].token, REVOKE, {"input": {"claimId": claim, "reason": reason}}
        )["revokeClaim"]
        if actor != model.issuer:
            assert result["__typename"] == "NotFound", result
            return
        if model.superseded_by is not None:
            assert result["__typename"] == "InvalidState", result
            return
        assert result["__typename"] == "ClaimRevoked", result
        if model.revocation is None:
            model.revocation = reason
            self.citizens[model.citizen].events += 1
        assert result["claim"]["status"] == "REVOKED"
        assert result["claim"]["revocation"]["reason"] == model.revocation

    @rule(
        target=claims,
        claim=claims,
        offset=st.sampled_from([0, 0, 1, 2]),
        level=st.sampled_from(["4", "6", "8"]),
    )
    def supersede(self, claim: str, offset: int, level: str) -> Any:
        """A newer claim of the same issuer replaces an active one; anything else is refused."""
        model = self.model_claims[claim]
        actor = (model.issuer + offset) % len(self.issuers)
        self._step("supersede", (model.citizen,), (model.issuer, actor))
        newer = factories.claim_input(
            self.citizens[model.citizen].insz, proficiency={"scale": "EQF", "level": level}
        )
        sent = {k: v for k, v in newer.items() if k not in ("insz", "competenceUri")}
        sent["claimId"] = claim
        refused = (
            "NotFound"
            if actor != model.issuer
            else "InvalidState"
            if model.status in ("SUPERSEDED", "REVOKED")
            else None
        )
        if refused is not None:
            result = self.svc.gql(self.issuers[actor].token, SUPERSEDE, {"input": sent})
            assert result["supersedeClaim"]["__typename"] == refused, result
            return multiple()
        new_id = self._record(SUPERSEDE, sent, actor)
        self.model_claims[new_id] = ClaimModel(
            new_id,
            actor,
            model.citizen,
            model.competence,
            sent["externalRef"],
            SUPERSEDE,
            sent,
            supersedes=claim,
        )
        model.superseded_by = new_id
        self.citizens[model.citizen].events += 2  # the newer claim, and the supersession
        return new_id

    # --- rules: consent ---

    @rule(
        target=grants,
        citizen=st.integers(0, N_CITIZENS - 1),
        scope=st.none() | st.frozensets(st.sampled_from(COMPETENCES), min_size=1),
    )
    def grant(self, citizen: int, scope: frozenset[str] | None) -> str:
        self._step("grant", (citizen,))
        sent: dict[str, Any] = {
            "granteeKind": "ORGANISATION",
            "organisationId": str(self.reader.organisation_id),
            "purpose": "guidance",
            "expiresAt": _in_days(30),
            "idempotencyKey": "grant-" + uuid.uuid4().hex,
        }
        if scope is not None:
            sent["competenceUris"] = sorted(scope)
        result = self.svc.gql(self.citizens[citizen].token, GRANT, {"input": sent})
        payload = result["grantAccess"]
        assert payload["__typename"] == "AccessGranted", payload
        assert payload["created"] is True
        made = payload["grant"]
        assert made["status"] == "ACTIVE"
        assert made["organisation"]["id"] == str(self.reader.organisation_id)
        shown = None if made["competences"] is None else {c["uri"] for c in made["competences"]}
        assert shown == (None if scope is None else set(scope))
        self.model_grants[made["id"]] = GrantModel(made["id"], citizen, scope, sent)
        self.citizens[citizen].exists = True
        self.citizens[citizen].events += 1
        return str(made["id"])

    @rule(grant=grants, same=st.booleans())
    def retry_grant(self, grant: str, same: bool) -> None:
        """Consent is idempotent too: the same grant again, or a conflict if the key is reused."""
        model = self.model_grants[grant]
        self._step("retry_grant", (model.citizen,))
        sent = dict(model.sent) if same else {**model.sent, "purpose": "something else"}
        payload = self.svc.gql(self.citizens[model.citizen].token, GRANT, {"input": sent})
        result = payload["grantAccess"]
        if same:
            assert result["__typename"] == "AccessGranted", result
            assert result["created"] is False
            assert result["grant"]["id"] == grant
            assert result["grant"]["status"] == ("REVOKED" if model.revoked else "ACTIVE")
        else:
            assert result["__typename"] == "Conflict", result
            assert result["existingId"] == grant

    @rule(grant=grants, offset=st.sampled_from([0, 0, 1]))
    def withdraw(self, grant: str, offset: int) -> None:
        """The citizen withdraws consent (idempotent); another citizen cannot touch it."""
        model = self.model_grants[grant]
        actor = (model.citizen + offset) % N_CITIZENS
        self._step("withdraw", (model.citizen, actor))
        result = self.svc.gql(self.citizens[actor].token, WITHDRAW, {"id": grant})["revokeAccess"]
        if actor != model.citizen:
            assert result["__typename"] == "NotFound", result
            return
        assert result["__typename"] == "AccessRevoked", result
        assert result["grant"]["status"] == "REVOKED"
        if not model.revoked:
            model.revoked = True
            self.citizens[model.citizen].events += 1

    # --- rules: reads that are refused ---

    @rule(claim=claims, issuer=st.integers(0, len(ISSUER_KINDS) - 1))
    def stranger_reads(self, claim: str, issuer: int) -> None:
        """An issuer reads the claims it issued, never another's, and no passport at all; another
        citizen does not read this one's passport. (Named to sort late: Hypothesis favours the
        rules it lists first, and the writes matter more.)"""
        model = self.model_claims[claim]
        self._step("stranger_reads")
        not_found = {"__typename": "NotFound", "code": "NOT_FOUND"}
        token = self.issuers[issuer].token
        found = self.svc.gql(token, CLAIM, {"id": claim})["claim"]
        if issuer == model.issuer:
            assert found["__typename"] == "Claim", found
            assert found["status"] == model.status
            assert found["externalRef"] == model.ref
            assert (found["supersedes"], found["supersededBy"]) == (
                model.supersedes,
                model.superseded_by,
            )
        else:
            assert found == not_found
        named = {"citizen": {"insz": self.citizens[model.citizen].insz}}
        assert self.svc.gql(token, READ, named)["passport"] == not_found
        other = self.citizens[(model.citizen + 1 + issuer % (N_CITIZENS - 1)) % N_CITIZENS]
        assert self.svc.gql(other.token, READ, named)["passport"] == not_found

    # --- the invariant ---

    @invariant()
    def service_matches_model(self) -> None:
        """What the step's citizens and issuers see equals the model: each citizen's own
        passport, the reader's consent and legal-basis reads of it, their hash chain, and each
        issuer's list of what it issued."""
        self.svc.figures.checks += 1
        citizens, self.touched_citizens = sorted(self.touched_citizens), set()
        issuers, self.touched_issuers = sorted(self.touched_issuers), set()
        self._check_own(citizens)  # first: it learns the passport ids the others compare
        self._check_reader(citizens)
        self._check_issuers(issuers)
        self._check_chains(citizens)
        self.consistent = True

    def teardown(self) -> None:
        """The views the last steps did not involve, once more, unless a step failed."""
        if self.consistent:
            self._check_own(range(N_CITIZENS))
            self._check_reader(range(N_CITIZENS))
            self._check_issuers(range(len(self.issuers)))
            self._check_chains(range(N_CITIZENS))

    def _check_own(self, which: Iterable[int]) -> None:
        for index in which:
            citizen = self.citizens[index]
            own = self.svc.gql(citizen.token, OWN)["me"]["passport"]
            assert own["basis"] == "SELF"
            if not citizen.exists:
                assert own["citizenId"] is None and own["competences"] == []
                continue
            assert own["citizenId"] is not None
            if citizen.citizen_id is None:
                citizen.citizen_id = own["citizenId"]
            assert own["citizenId"] == citizen.citizen_id
            assert seen_passport(own) == self._expected(index, None), f"citizen {index}"

    def _check_reader(self, which: Iterable[int]) -> None:
        """The reader's consent and legal-basis reads of these citizens, in one request."""
        indices = list(which)
        if not indices:
            return
        variables = {f"c{i}": {"insz": self.citizens[i].insz} for i in indices}
        read = self.svc.gql(self.reader.token, reader_batch(indices), variables)
        not_found = {"__typename": "NotFound", "code": "NOT_FOUND"}
        for index in indices:
            citizen = self.citizens[index]
            consent, legal = read[f"consent{index}"], read[f"legal{index}"]
            scope = self._consent_scope(index)
            if scope is False:
                assert consent == not_found, (index, consent)
            else:
                assert isinstance(scope, frozenset) or scope is None
                assert consent["basis"] == "CONSENT"
                assert consent["citizenId"] == citizen.citizen_id
                assert seen_passport(consent) == self._expected(index, scope), (index, scope)
            if not citizen.exists:
                assert legal == not_found, (index, legal)
            else:
                assert legal["basis"] == "LEGAL_BASIS"
                assert legal["citizenId"] == citizen.citizen_id
                assert seen_passport(legal) == self._expected(index, None), index

    def _check_issuers(self, which: Iterable[int]) -> None:
        for index in which:
            issued = self.svc.gql(self.issuers[index].token, ISSUED)["issuedClaims"]
            assert issued["pageInfo"]["hasNextPage"] is False
            nodes = [edge["node"] for edge in issued["edges"]]
            refs = Counter(node["externalRef"] for node in nodes)
            assert all(n == 1 for n in refs.values()), refs  # a retry never duplicates
            seen = {node["id"]: (node["externalRef"], *claim_row(node)) for node in nodes}
            expected = {
                c.id: (
                    c.ref,
                    c.status,
                    c.supersedes,
                    c.superseded_by,
                    self.org_ids[index],
                    c.revocation,
                )
                for c in self.model_claims.values()
                if c.issuer == index
            }
            assert seen == expected, f"issuer {index}"

    def _check_chains(self, which: Iterable[int]) -> None:
        admin = self.svc.api.admin()
        for citizen in (self.citizens[i] for i in which):
            if citizen.citizen_id is None:
                assert not citizen.exists
                continue
            report = self.svc.gql(admin, VERIFY, {"id": citizen.citizen_id})["verifyEventChains"]
            assert report == {"eventsChecked": citizen.events, "intact": True, "breaks": []}


def test_service_behaves_as_the_model(settings: Settings) -> None:
    """Every example a fresh machine on the one running service; a disagreement is shrunk to
    the shortest sequence of steps that shows it and printed as Python to replay."""
    started = time.monotonic()
    with running_service(settings) as service:
        # Documented to take any factory; typed as taking the class.
        factory = cast("type[RuleBasedStateMachine]", lambda: PassportMachine(service))
        run_state_machine_as_test(
            factory,
            settings=hypothesis_settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    figures = service.figures
    print(
        f"\nmodel-based: {figures.examples} examples, {sum(figures.steps.values())} steps "
        f"({dict(sorted(figures.steps.items()))}), {figures.checks} invariant checks, "
        f"{figures.requests} requests, {time.monotonic() - started:.1f} s"
    )
    assert figures.examples >= min(EXAMPLES, 10)
    assert sum(figures.steps.values()) > figures.examples  # the examples did take steps


# --- Regressions the machine found ------------------------------------------------------------

LEGAL_READ = f"""
query($citizen: CitizenRef!) {{
  passport(citizen: $citizen, purpose: "guidance interview", legalBasis: "GUIDANCE") {{
    __typename ... on Passport {{ {PASSPORT_VIEW} }} ... on Error {{ code }}
  }}
}}"""


async def _unknown_to_the_service(api: Api, reader: Partner, insz: str) -> bool:
    own = (await api.gql(api.citizen(insz), OWN))["data"]["me"]["passport"]
    legal = (await api.gql(reader.token, LEGAL_READ, {"citizen": {"insz": insz}}))["data"]
    return own["citizenId"] is None and legal["passport"]["__typename"] == "NotFound"


async def test_a_conflicting_batch_row_leaves_no_passport_behind(
    api: Api, school: Partner, reader: Partner
) -> None:
    """Shrunk from the machine: a claim, then a batch retry of its ref naming another person.
    The row was a conflict, yet the batch (which commits its other rows) had created that
    person's citizen record: an empty passport a legal-basis reader could find, for someone
    nobody ever wrote a claim about. A single ``issueClaim`` rolls it back."""
    first, other = factories.insz(), factories.insz()
    sent = factories.claim_input(first)
    claim = (await api.gql(school.token, ISSUE, {"input": sent}))["data"]["issueClaim"]["claim"]
    body = await api.gql(school.token, ISSUE_MANY, {"inputs": [{**sent, "insz": other}]})
    batch = body["data"]["issueClaims"]
    assert (batch["accepted"], batch["duplicates"], batch["rejected"]) == (0, 0, 1)
    (result,) = batch["results"]
    assert result["__typename"] == "Conflict" and result["existingId"] == claim["id"]
    assert await _unknown_to_the_service(api, reader, other)


async def test_a_ref_repeated_in_one_batch_for_another_person_creates_nobody(
    api: Api, school: Partner, reader: Partner
) -> None:
    """The same defect within one batch: the second row reuses the first row's new ref for
    someone else. The first is recorded, the second is a conflict naming it, and only the
    first person exists; a faithful repeat of the first row is still answered as a retry."""
    first, other = factories.insz(), factories.insz()
    sent = factories.claim_input(first)
    body = await api.gql(
        school.token, ISSUE_MANY, {"inputs": [sent, {**sent, "insz": other}, sent]}
    )
    batch = body["data"]["issueClaims"]
    assert (batch["accepted"], batch["duplicates"], batch["rejected"]) == (1, 1, 1)
    made, conflict, again = batch["results"]
    assert made["__typename"] == "ClaimIssued" and made["created"] is True
    assert conflict["__typename"] == "Conflict"
    assert conflict["existingId"] == made["claim"]["id"]
    assert again["claim"]["id"] == made["claim"]["id"] and again["created"] is False
    assert await _unknown_to_the_service(api, reader, other)
    assert not await _unknown_to_the_service(api, reader, first)
