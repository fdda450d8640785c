"""The compiled passport read (service/schema/passports/compiled.py) answers exactly as the
resolvers do: every passport-shaped operation of the examples and of the fuzz corpus, run both
ways on one world (several issuers, revoked, superseded and expired claims, endorsements in
force, hidden and revoked, self-declarations, evidence, a scoped grant, a share link, a citizen
whose grant shows nothing), gives byte-identical HTTP answers and identical access records;
refusals too. The clock is held still, so both reads carry the same ``readAt``."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import graphql
import hypothesis_graphql
import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service import clock
from service.auth.principal import Principal
from service.models.enums import AccessBasis, PrincipalKind
from service.passports import service as passports
from service.schema.passports import compiled
from service.settings import Settings
from tests import factories
from tests.citizen_api import SELF_DECLARE, grant
from tests.conftest import make_partner
from tests.graphql_client import Api, Partner
from tests.test_claims_api import REVOKE, SUPERSEDE, issue
from tests.test_endorsements import HIDE, REVOKE_ENDORSEMENT, coach, endorse

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = graphql.build_schema((ROOT / "schema.graphql").read_text())
PASSPORT_ROOTS = ("passport", "passports", "me", "sharedPassport")


@dataclasses.dataclass
class World:
    citizen: str  # everything: two issuers, history, endorsements, declarations
    scoped: str  # granted to the reader for one competence only
    empty: str  # granted to the reader for a competence they hold no claim of
    reader: Partner  # a legal basis, and the grants above
    link: str  # a share link of ``citizen`` for two competences


async def _world(api: Api) -> World:
    school = await make_partner(api)
    employer = await make_partner(api, kind="EMPLOYER")
    reader = await make_partner(
        api, kind="PUBLIC_EMPLOYMENT_SERVICE", scopes=("PASSPORTS_READ", "CLAIMS_ENDORSE")
    )
    body = await api.gql(
        api.admin(),
        """mutation($input: GrantLegalBasisInput!) { grantLegalBasis(input: $input) {
             ... on LegalBasis { id } } }""",
        {
            "input": {
                "organisationId": str(reader.organisation_id),
                "code": "GUIDANCE",
                "reference": "Decree on guidance, art. 5",
            }
        },
    )
    assert "errors" not in body, body
    citizen, scoped, empty = factories.insz(), factories.insz(), factories.insz()
    token = api.citizen(citizen)
    python = (await issue(api, school, factories.claim_input(citizen)))["claim"]
    # The same school again on the same competence: an organisation is counted once.
    again = await issue(api, school, factories.claim_input(citizen, acquiredOn="2022-05-05"))
    assert again["__typename"] == "ClaimIssued", again
    escaped = await issue(
        api,
        employer,
        factories.claim_input(
            citizen,
            learningContext="INFORMAL",
            assessmentMethod="WORKPLACE_OBSERVATION",
            proficiency={"scale": "EQF", "level": "6"},
            acquiredOn="2021-03-01",
            lastUsedOn="2025-02-01",
            # What JSON escapes, and what it writes as it is: both paths write it alike.
            context='Led the "move" of C:\\data\tby hand,\nthen café shifts 😀 / done',
            evidence=[
                {
                    "kind": "REFERENCE",
                    "title": 'Manager\'s "letter"',
                    "url": "https://example.org/letters/2024-02",
                    "issuedOn": "2024-02-03",
                },
                {"kind": "CERTIFICATE", "title": "Badge", "digest": "sha256:" + "ab" * 32},
            ],
        ),
    )
    assert escaped["__typename"] == "ClaimIssued", escaped
    await issue(
        api,
        school,
        factories.claim_input(
            citizen,
            factories.TEAMWORK,
            proficiency={"scale": "DESCRIPTIVE", "level": "intermediate"},
            evidence=[],
            issuerRole=None,
            context=None,
            lastUsedOn=None,
        ),
    )
    revoked = (await issue(api, employer, factories.claim_input(citizen, factories.SQL)))["claim"]
    body = await api.gql(
        employer.token, REVOKE, {"input": {"claimId": revoked["id"], "reason": "wrong person"}}
    )
    assert "errors" not in body, body
    old = (
        await issue(
            api, school, factories.claim_input(citizen, factories.ENGLISH, proficiency=None)
        )
    )["claim"]
    newer = {
        k: v
        for k, v in factories.claim_input(citizen, lastUsedOn="2025-06-01").items()
        if k not in ("insz", "competenceUri")
    }
    body = await api.gql(school.token, SUPERSEDE, {"input": {**newer, "claimId": old["id"]}})
    assert "errors" not in body, body
    await issue(
        api,
        employer,
        factories.claim_input(
            citizen, factories.FORKLIFT, acquiredOn="2015-01-01", validUntil="2016-01-01"
        ),
    )
    for uri, acquired in ((factories.SQL, "2019-09-09"), (factories.FORKLIFT, "2023-01-01")):
        body = await api.gql(
            token,
            SELF_DECLARE,
            {"input": {"competenceUri": uri, "acquiredOn": acquired, "context": "evening class"}},
        )
        assert "errors" not in body, body
    # Endorsements: one in force, one the citizen hid, one revoked.
    await grant(api, token, granteeKind="ORGANISATION", organisationId=str(reader.organisation_id))
    endorser = await coach(api)
    await grant(
        api, token, granteeKind="ORGANISATION", organisationId=str(endorser.organisation_id)
    )
    kept = await endorse(api, endorser, python["id"], endorserRole="coach")
    hidden = await endorse(api, reader, python["id"])
    withdrawn = await endorse(api, endorser, python["id"], statement="Second look")
    assert kept["created"] and hidden["created"] and withdrawn["created"]
    body = await api.gql(token, HIDE, {"id": hidden["endorsement"]["id"]})
    assert "errors" not in body, body
    body = await api.gql(
        endorser.token,
        REVOKE_ENDORSEMENT,
        {"input": {"endorsementId": withdrawn["endorsement"]["id"], "reason": "mistaken"}},
    )
    assert "errors" not in body, body
    link = await grant(api, token, competenceUris=[factories.PYTHON, factories.SQL])
    await issue(api, school, factories.claim_input(scoped))
    await issue(api, school, factories.claim_input(scoped, factories.SQL))
    await issue(api, school, factories.claim_input(empty))
    for who, uris in ((scoped, [factories.SQL]), (empty, [factories.TEAMWORK])):
        await grant(
            api,
            api.citizen(who),
            granteeKind="ORGANISATION",
            organisationId=str(reader.organisation_id),
            competenceUris=uris,
        )
    return World(citizen, scoped, empty, reader, link["shareLink"]["token"])


@pytest.fixture
def still(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The service's clock, held at a moment the test moves on between pairs of reads."""
    moment = [datetime.now(UTC).replace(microsecond=123456)]
    monkeypatch.setattr(clock, "now", lambda: moment[0])
    return moment


async def _records(engine: AsyncEngine, at: datetime) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT * FROM access_records WHERE accessed_at = :at ORDER BY citizen_id"),
            {"at": at},
        )
        return [dict(row._mapping) for row in rows]


def _without_ids(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """In an order of their own: one read may record a citizen twice (passport, passports)."""
    return sorted(({k: v for k, v in r.items() if k != "id"} for r in records), key=repr)


async def both_ways(
    api: Api,
    app_settings: Settings,
    engine: AsyncEngine,
    still: list[datetime],
    token: str,
    query: str,
    variables: dict[str, Any] | None = None,
) -> bytes:
    """The operation compiled and then resolved field by field, at one moment: the same
    status and bytes, and the same access records; returns the answer."""
    still[0] += timedelta(seconds=1)
    answers, records = [], []
    try:
        for compiled_reads in (True, False):
            app_settings.compiled_reads = compiled_reads
            before = {r["id"] for r in await _records(engine, still[0])}
            response = await api.post(token, query, variables)
            answers.append((response.status_code, response.content))
            records.append([r for r in await _records(engine, still[0]) if r["id"] not in before])
    finally:
        app_settings.compiled_reads = True
    assert answers[0] == answers[1], (query, answers[0][1][:2000], answers[1][1][:2000])
    assert _without_ids(records[0]) == _without_ids(records[1]), query
    return answers[0][1]


def _variables(operation: graphql.OperationDefinitionNode, world: World) -> dict[str, Any]:
    given = {
        "citizen": {"insz": world.citizen},
        "c": {"insz": world.citizen},
        "purpose": "checking the compiled read",
        "legalBasis": "GUIDANCE",
    }
    return {
        d.variable.name.value: given[d.variable.name.value]
        for d in operation.variable_definitions or ()
        if d.variable.name.value in given
    }


def _example_operations() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "examples").rglob("*.graphql")):
        document = graphql.parse(path.read_text())
        for operation in document.definitions:
            if not isinstance(operation, graphql.OperationDefinitionNode):
                continue
            if operation.operation is graphql.OperationType.QUERY and any(
                _reads_passport(s) for s in operation.selection_set.selections
            ):
                found.append((path.parent.name + "/" + path.name, path.read_text()))
    return found


def _reads_passport(selection: graphql.SelectionNode) -> bool:
    if not isinstance(selection, graphql.FieldNode) or selection.name.value not in PASSPORT_ROOTS:
        return False
    if selection.name.value != "me":
        return True
    below = selection.selection_set.selections if selection.selection_set else ()
    return any(isinstance(s, graphql.FieldNode) and s.name.value == "passport" for s in below)


EXAMPLES = _example_operations()


def test_the_examples_hold_passport_reads() -> None:
    names = {name for name, _ in EXAMPLES}
    assert {
        "citizen/my-passport.graphql",
        "share-link/shared-passport.graphql",
        "reader/read-under-consent.graphql",
        "reader/read-under-legal-basis.graphql",
    } <= names


def _token(api: Api, world: World, name: str) -> str:
    if name.startswith("citizen/"):
        return api.citizen(world.citizen)
    if name.startswith("share-link/"):
        return world.link
    return world.reader.token


async def test_examples_and_fuzzed_selections_answer_alike(
    api: Api, settings: Settings, engine: AsyncEngine, still: list[datetime]
) -> None:
    world = await _world(api)
    for name, query in EXAMPLES:
        [operation] = [
            d
            for d in graphql.parse(query).definitions
            if isinstance(d, graphql.OperationDefinitionNode)
        ]
        answer = await both_ways(
            api,
            settings,
            engine,
            still,
            _token(api, world, name),
            query,
            _variables(operation, world),
        )
        assert b'"competences":[{' in answer, (name, answer[:500])
    checked = 0
    for document in _fuzzed():
        for token, query, variables in _as_callers(api, world, document):
            await both_ways(api, settings, engine, still, token, query, variables)
            checked += 1
    assert checked >= 40
    # And each of them was compiled: none fell back to the resolvers.
    assert compiled._selections and None not in compiled._selections.values()


def _fuzzed() -> list[graphql.DocumentNode]:
    """hypothesis-graphql's documents for the passport roots, as tests/test_schema_fuzz.py
    draws them (valid ones: the invalid never reach a resolver), from a fixed seed."""
    documents: list[graphql.DocumentNode] = []

    @settings(
        max_examples=60,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(
        hypothesis_graphql.from_schema(
            SCHEMA, fields=list(PASSPORT_ROOTS), print_ast=lambda document: document
        )
    )
    def collect(document: graphql.DocumentNode) -> None:
        documents.append(document)

    collect()
    return documents


class _Callers(graphql.Visitor):
    """Real citizens, purpose and legal basis in place of generated ones; ``me`` keeps only
    its passport (the rest of it, such as the access log, changes with every read)."""

    def __init__(self, citizens: list[str], legal: bool) -> None:
        super().__init__()
        self.citizens, self.legal = citizens, legal

    def leave_field(
        self, node: graphql.FieldNode, _key: Any, _parent: Any, path: Any, *_: Any
    ) -> Any:
        name = node.name.value
        if len(path) != 5 or name not in PASSPORT_ROOTS:  # root fields only
            return None
        if name == "me":
            kept = tuple(
                s
                for s in (node.selection_set.selections if node.selection_set else ())
                if isinstance(s, graphql.FieldNode) and s.name.value == "passport"
            )
            if not kept:  # only the rest of `me`: its passport instead
                kept = (
                    graphql.FieldNode(
                        name=graphql.NameNode(value="passport"),
                        selection_set=graphql.SelectionSetNode(
                            selections=(graphql.FieldNode(name=graphql.NameNode(value="basis")),)
                        ),
                    ),
                )
            return graphql.FieldNode(
                alias=node.alias,
                name=node.name,
                directives=node.directives,
                selection_set=graphql.SelectionSetNode(selections=kept),
            )
        arguments = [a for a in node.arguments or () if a.name.value == "filter"]
        ref = lambda insz: graphql.parse_value(f'{{insz: "{insz}"}}')  # noqa: E731
        if name == "passport":
            arguments.append(
                graphql.ArgumentNode(
                    name=graphql.NameNode(value="citizen"), value=ref(self.citizens[0])
                )
            )
        if name == "passports":
            arguments.append(
                graphql.ArgumentNode(
                    name=graphql.NameNode(value="citizens"),
                    value=graphql.ListValueNode(values=tuple(ref(c) for c in self.citizens)),
                )
            )
        if name in ("passport", "passports"):
            arguments.append(
                graphql.ArgumentNode(
                    name=graphql.NameNode(value="purpose"),
                    value=graphql.StringValueNode(value="fuzz"),
                )
            )
            if self.legal:
                arguments.append(
                    graphql.ArgumentNode(
                        name=graphql.NameNode(value="legalBasis"),
                        value=graphql.StringValueNode(value="GUIDANCE"),
                    )
                )
        return graphql.FieldNode(
            alias=node.alias,
            name=node.name,
            arguments=tuple(arguments),
            directives=node.directives,
            selection_set=node.selection_set,
        )


def _as_callers(
    api: Api, world: World, document: graphql.DocumentNode
) -> list[tuple[str, str, dict[str, Any] | None]]:
    """The document as each caller who may run it: the reader under a legal basis and under
    consent (all, a scoped and an empty grant, a stranger, a duplicate), the citizen, the link."""
    roots = {
        s.name.value
        for d in document.definitions
        if isinstance(d, graphql.OperationDefinitionNode)
        for s in d.selection_set.selections
        if isinstance(s, graphql.FieldNode)
    }
    everyone = [world.citizen, world.scoped, world.empty, factories.insz(), world.citizen]
    runs: list[tuple[str, str, dict[str, Any] | None]] = []
    for legal in (True, False):
        rewritten = graphql.visit(document, _Callers(everyone, legal))
        query = graphql.print_ast(rewritten)
        if roots & {"passport", "passports"}:
            runs.append((world.reader.token, query, None))
        if "me" in roots or (not legal and "passport" in roots):
            runs.append((api.citizen(world.citizen), query, None))
        if "sharedPassport" in roots and legal:
            runs.append((world.link, query, None))
    return runs


async def test_languages_filters_and_scopes_answer_alike(
    api: Api, settings: Settings, engine: AsyncEngine, still: list[datetime]
) -> None:
    world = await _world(api)
    body = """
      __typename citizenId readAt basis
      competences {
        __typename
        competence {
          uri skillType reuseLevel nl: label { text language }
          en: label(lang: EN) { text language } description(lang: $lang) { text language }
        }
        status firstAcquiredOn lastUsedOn distinctOrganisations endorsements endorsingOrganisations
        highestLevel { scale level rank }
        vouchers { organisationKind organisations }
        recent: claims @skip(if: $terse) {
          id status acquiredOn lastUsedOn validUntil recordedAt issuerRole context
          assessmentMethod learningContext supersedes supersededBy externalRef
          competence { uri label(lang: $lang) { text } }
          issuer { id name kind clientId }
          proficiency { scale level rank }
          evidence { kind title url digest issuedOn }
          revocation { reason revokedAt }
          endorsements { id claimId endorserRole statement endorsedAt status revokedAt
                         revocationReason hidden endorser { id name kind clientId } }
        }
        claims @include(if: $terse) { id }
      }
      selfDeclared {
        id competence { uri label(lang: $lang) { text language } } proficiency { level }
        context learningContext evidence { title } acquiredOn lastUsedOn declaredAt
      }
    """
    fragment = f"fragment P on Passport {{ {body} }}"
    reads = f"""
    query($c: CitizenRef!, $many: [CitizenRef!]!, $basis: String, $f: PassportFilter,
          $lang: Language, $terse: Boolean!) {{
      one: passport(citizen: $c, purpose: "compare", legalBasis: $basis, filter: $f) {{
        ... P ... on Error {{ code }}
      }}
      many: passports(citizens: $many, purpose: "compare", legalBasis: $basis, filter: $f) {{
        __typename ... P ... on NotFound {{ message }}
      }}
    }}
    {fragment}"""
    mine = f"""query($f: PassportFilter, $lang: Language, $terse: Boolean!) {{
      me {{ passport(filter: $f) {{ ... P }} }} }} {fragment}"""
    shared = f"""query($f: PassportFilter, $lang: Language, $terse: Boolean!) {{
      sharedPassport(filter: $f) {{ ... P }} }} {fragment}"""
    filters = [
        None,
        {"statuses": ["ACTIVE"]},
        {"statuses": ["REVOKED", "SUPERSEDED", "EXPIRED"]},
        {"skillTypes": ["SKILL_COMPETENCE"], "issuerKinds": ["EMPLOYER"]},
        {"learningContexts": ["INFORMAL"]},
        {"usedSince": "2024-06-01"},
        {"usedSince": "2030-01-01"},
    ]
    many = [{"insz": c} for c in (world.citizen, world.scoped, world.empty, factories.insz())]
    for flt in filters:
        for lang, terse in ((None, False), ("EN", False), ("NL", True)):
            common = {"f": flt, "lang": lang, "terse": terse}
            for basis in ("GUIDANCE", None):
                variables = {"c": {"insz": world.citizen}, "many": many, "basis": basis, **common}
                await both_ways(api, settings, engine, still, world.reader.token, reads, variables)
                variables["c"] = {"insz": world.scoped}
                await both_ways(api, settings, engine, still, world.reader.token, reads, variables)
            await both_ways(api, settings, engine, still, api.citizen(world.citizen), mine, common)
            await both_ways(api, settings, engine, still, world.link, shared, common)
    # A citizen reading another's passport, and one with nothing recorded about them yet.
    refused = {
        "c": {"insz": world.scoped},
        "many": many,
        "basis": None,
        "f": None,
        "lang": None,
        "terse": False,
    }
    answer = await both_ways(
        api, settings, engine, still, api.citizen(world.citizen), reads, refused
    )
    assert b'"NotFound"' in answer
    nobody = api.citizen(factories.insz())
    await both_ways(
        api, settings, engine, still, nobody, mine, {"f": None, "lang": None, "terse": False}
    )
    assert compiled._selections and None not in compiled._selections.values()


async def test_the_compiled_path_is_taken(
    api: Api, settings: Settings, count_statements: Any
) -> None:
    """Compiled: one statement builds the answer; with the setting off, none does."""
    world = await _world(api)
    query = """query($c: CitizenRef!) {
      passport(citizen: $c, purpose: "checking the plan", legalBasis: "GUIDANCE") {
        ... on Passport { competences { claims { id } } } } }"""
    for compiled_reads, expected in ((True, 1), (False, 0)):
        settings.compiled_reads = compiled_reads
        count_statements.statements.clear()
        try:
            body = await api.gql(world.reader.token, query, {"c": {"insz": world.citizen}})
        finally:
            settings.compiled_reads = True
        assert "errors" not in body, body
        built = [s for s in count_statements.statements if s.lstrip().startswith("WITH c AS")]
        assert body["data"]["passport"]["competences"], body
        assert len(built) == expected, count_statements.statements


async def test_instants_are_written_as_python_writes_them(engine: AsyncEngine) -> None:
    """Whole seconds, microseconds, and the times a JSON column carries (in the session's
    time zone) come out as ``datetime.isoformat`` writes them."""
    moments = [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    async with engine.connect() as conn:
        for moment in moments:
            utc = await conn.scalar(
                text(f"SELECT {compiled._instant_utc('CAST(:at AS timestamptz)')}"), {"at": moment}
            )
            assert utc == moment.isoformat()
            carried = await conn.scalar(
                text(
                    "SELECT "
                    + compiled._instant_json(
                        "json_build_object('t', CAST(:at AS timestamptz))->>'t'"
                    )
                ),
                {"at": moment},
            )
            written = await conn.scalar(
                text("SELECT json_build_object('t', CAST(:at AS timestamptz))->>'t'"),
                {"at": moment},
            )
            assert carried == datetime.fromisoformat(written).isoformat()


async def test_postgresql_writes_json_strings_as_orjson_does(engine: AsyncEngine) -> None:
    """The compiled answer is PostgreSQL's text in the response as it is, so its string escapes
    must be orjson's, byte for byte: every ASCII character (controls included, though the API
    refuses most of them), and letters, marks, symbols and emoji beyond it."""
    texts = [chr(point) for point in range(1, 128)]
    texts += ["é", "ß", "Ω", "ł", "\u00ad", "\u200d", "\u2028", "\ufeff", "€", "中文", "😀", "👩‍💻"]
    texts.append("".join(texts))
    async with engine.connect() as conn:
        written = (
            await conn.execute(
                text("SELECT to_json(t)::text FROM unnest(CAST(:texts AS text[])) AS t"),
                {"texts": texts},
            )
        ).scalars()
        assert list(written) == [orjson.dumps(t).decode() for t in texts]


def test_the_compiled_record_has_the_columns_record_access_writes() -> None:
    """The statement writes the citizen and its competences itself, every other column of
    the resolver path's record from its parameters."""
    columns = passports._record_columns(
        Principal(kind=PrincipalKind.CITIZEN, subject="x"),
        citizen_id=uuid.uuid4(),
        basis=AccessBasis.SELF,
        read_at=clock.now(),
        grant_ids=(),
        competence_ids=(),
        operation="passport",
        legal_basis_id=None,
        purpose=None,
    )
    assert set(compiled.RECORD_COLUMNS) == set(columns) - {"citizen_id", "competence_ids"}
