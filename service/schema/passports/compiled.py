"""The passport read compiled to SQL: one statement that builds exactly the requested JSON.

A passport read (``passport``, ``passports``, ``me { passport }``, ``sharedPassport``) answers
some 2,000 fields for 50 claims. Instead of loading the claims into views and completing each
field in Python, the resolver compiles the operation's selection on ``Passport`` (once per
document and the values of the variables used inside it, kept across requests) into one
statement that builds the answer's JSON text in PostgreSQL (``concat`` / ``string_agg``), with
the read's scope, filters, language fallback, endorsement visibility, grouping and ordering in
SQL; the executor takes that text as the field's value (``SerialExecution``) and the response
writes it as it is (``orjson.Fragment``): nothing of the passport is parsed or built in Python.

Authorization and the access record stay where they were (``service.passports.service``), in
the same transaction: the compiled statement replaces only the claims' SELECT and their
assembly. It reads the claims through the very statement the resolver path reads them with
(``passport_claims_sql``: the same joins, status, scope and filter conditions), and the rules
it re-states in SQL are the ones of ``service.passports.service.aggregate`` and ``_assemble``
(grouping, what vouches, ordering), ``service.endorsements.views.visible`` and
``service.taxonomy.search.pick_label``; ``tests/test_compiled_reads.py`` holds both paths to
byte-identical answers on every passport-shaped operation of the example and fuzz corpora.

Compiled: every field of ``Passport`` and of the types below it (``PassportCompetence``,
``VoucherCount``, ``SelfDeclaredCompetence``, ``Claim``, ``Competence``, ``LocalizedText``,
``Issuer``, ``Proficiency``, ``Evidence``, ``Revocation``, ``Endorsement``, ``Endorser``), with
aliases, fragments, ``__typename``, ``@skip``/``@include`` and ``lang`` arguments (literal or
variable). Anything else (a field this module does not know, ``@defer``) is ``NotCompilable``:
the read then goes the resolver path, so an answer never depends on what is compiled.
"""

# S608: the statement is built from this module's own text, the schema's names and the
# response keys of a validated document (quoted); every value travels as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

import orjson
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from graphql.execution.collect_fields import FieldDetails, FragmentDetails, collect_subfields
from graphql.execution.values import VariableValues, get_argument_values
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.claims.views import PassportClaimsFilter, passport_claims_sql
from service.db.raw import driver
from service.models import AccessRecord
from service.models.enums import (
    AccessBasis,
    AssessmentMethod,
    ClaimStatus,
    EndorsementStatus,
    EvidenceKind,
    LearningContext,
    OrganisationKind,
    ProficiencyScale,
    ReuseLevel,
    SkillType,
)
from service.passports.service import STATUS_ORDER, PassportFilter, Rendered
from service.schema.common import Language
from service.taxonomy.search import FALLBACK_LANGUAGE

MAX_ARGUMENTS = 100  # what one call of concat() takes (FUNC_MAX_ARGS)
MAX_SELECTIONS = 512


class NotCompilable(Exception):
    """Something in the selection this compiler does not reproduce: resolve it in Python."""


class Answer:
    """A passport's answer built in PostgreSQL: the executor takes ``data`` as the value of
    its field as it is (``SerialExecution.complete_value``), and orjson writes its text into
    the response unparsed (``orjson.Fragment``)."""

    __slots__ = ("data",)

    def __init__(self, data: orjson.Fragment) -> None:
        self.data = data


# -- SQL pieces ---------------------------------------------------------------------------
#
# The statement writes the answer as the very text orjson would write for it: compact (no
# spaces, which ``json_build_object`` and ``json_agg`` put after every colon and comma), and
# each scalar through ``to_json``, whose escapes are orjson's (quote, backslash, the short
# forms of backspace, form feed, newline, return and tab, other control characters as
# lowercase ``\u00xx``, everything else as UTF-8). So the response takes the text as it is:
# no parsing in Python, no writing again (and PostgreSQL's ``concat`` builds it in about 0.75
# of the time ``json_build_object`` took).


class Json(str):
    """An SQL expression whose value is JSON text already (an object or a list built here),
    where anything else a field answers is a scalar SQL value."""


class Always(Json):
    """JSON text that is never NULL (an object's ``concat``, a literal)."""


def _json(expression: str) -> str:
    """A field's value as JSON text: null for SQL's NULL, as ``json_build_object`` wrote it."""
    if isinstance(expression, Always):
        return expression
    if isinstance(expression, Json):
        return f"coalesce({expression}, 'null')"
    return f"coalesce(to_json({expression})::text, 'null')"


def _quoted(expression: str) -> Json:
    """Text with nothing to escape (a UUID, an instant written by ``to_char``) as a JSON
    string, without ``to_json``'s scan for escapes."""
    return Json(f"('\"' || {expression} || '\"')")


def _number(expression: str) -> Json:
    """An integer or a boolean: its text is its JSON."""
    return Json(f"({expression})::text")


def _concat(arguments: list[str]) -> str:
    while len(arguments) > MAX_ARGUMENTS:
        arguments = [
            f"concat({', '.join(arguments[i : i + MAX_ARGUMENTS])})"
            for i in range(0, len(arguments), MAX_ARGUMENTS)
        ]
    return f"concat({', '.join(arguments)})"


def _list(each: str, order: str) -> Json:
    """``json_agg(each ORDER BY order)`` of JSON texts that are never NULL (objects), compact:
    NULL over no rows, as ``json_agg``."""
    return Json(f"('[' || string_agg({each}, ',' ORDER BY {order}) || ']')")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_string(text: str) -> str:
    """A name as a JSON string (names need no escapes; orjson writes them so)."""
    return orjson.dumps(text).decode()


def _enum(expression: str, enum: type[Enum]) -> Always:
    """A stored value as the JSON text of its GraphQL enum name (the member's name:
    service/schema/enums.py); null for none."""
    cases = " ".join(f"WHEN {_quote(m.value)} THEN {_quote(_json_string(m.name))}" for m in enum)
    return Always(f"(CASE {expression} {cases} ELSE 'null' END)")


def _nonempty_enum(expression: str, enum: type[Enum]) -> Always:
    """An optional value: null when missing or empty, as ``competence_type`` answers it."""
    return Always(
        f"(CASE WHEN coalesce({expression}, '') = '' THEN 'null' "
        f"ELSE {_enum(expression, enum)} END)"
    )


def _instant_utc(expression: str) -> str:
    """A timestamptz as Python's ``isoformat`` writes the UTC datetime asyncpg gives for it
    (no fraction when it is zero: '.000000' can stand nowhere else)."""
    utc = f"({expression} AT TIME ZONE 'UTC')"
    return f"(replace(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || '+00:00')"


def _instant_json(expression: str) -> str:
    """A timestamp that JSON carried as PostgreSQL wrote it (in the session's time zone), as
    Python's ``isoformat`` writes what ``datetime.fromisoformat`` read from that text."""
    instant = f"({expression})::timestamptz"
    return (
        f"(replace(to_char({instant}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || "
        f"to_char({instant}, 'TZH:TZM'))"
    )


def _localized(values: str, lang: str, build: Callable[[str, str], str]) -> str:
    """``pick_label``: the text in ``lang``, else English, else the first language by name
    with a text; ``build`` makes the answer of a (text, language); null when there is none."""
    branches = []
    for candidate in dict.fromkeys((lang, FALLBACK_LANGUAGE)):
        found = f"{values}->>{_quote(candidate)}"
        branches.append(f"WHEN {found} <> '' THEN {build(found, _quote(candidate) + '::text')}")
    anyone = build("e.value", "e.key")
    return (
        f"(CASE {' '.join(branches)} ELSE (SELECT {anyone} FROM jsonb_each_text({values}) e "
        "WHERE e.value <> '' ORDER BY e.key COLLATE \"C\" LIMIT 1) END)"
    )


# -- the statement --------------------------------------------------------------------------


@dataclass
class _Statement:
    """What the selection asks of each level of the statement: per claim (``k``), per
    competence (``g``), per passport (``p``)."""

    claim_columns: list[str] = field(default_factory=list)
    group_columns: list[str] = field(default_factory=list)
    passport_columns: list[str] = field(default_factory=list)  # over g, grouped by citizen
    declared_columns: list[str] = field(default_factory=list)  # over k, grouped by citizen
    voucher_columns: list[str] = field(default_factory=list)  # ``uv``: per competence
    answer: str = ""
    endorsement_counts: bool = False  # ``e``: per competence, its active claims' endorsers
    endorsements: bool = False  # any field reads the claims' endorsements (else not loaded)

    def claim(self, expression: str) -> str:
        self.claim_columns.append(f"{expression} AS k{len(self.claim_columns)}")
        return f"k{len(self.claim_columns) - 1}"

    def group(self, expression: str) -> str:
        self.group_columns.append(f"{expression} AS g{len(self.group_columns)}")
        return f"g{len(self.group_columns) - 1}"

    def competences(self, expression: str) -> str:
        self.passport_columns.append(f"{expression} AS c{len(self.passport_columns)}")
        return f"c{len(self.passport_columns) - 1}"

    def declared(self, expression: str) -> str:
        self.declared_columns.append(f"{expression} AS d{len(self.declared_columns)}")
        return f"d{len(self.declared_columns) - 1}"

    def vouchers(self, expression: str) -> str:
        self.voucher_columns.append(f"{expression} AS u{len(self.voucher_columns)}")
        return f"u{len(self.voucher_columns) - 1}"


STATUS_RANK = (
    "(CASE k.status "
    + " ".join(f"WHEN {_quote(s.value)} THEN {i}" for i, s in enumerate(STATUS_ORDER))
    + " END)"
)
STATUS_BY_RANK = Always(
    "(CASE min(v.status_rank) "
    + " ".join(f"WHEN {i} THEN {_quote(_json_string(s.name))}" for i, s in enumerate(STATUS_ORDER))
    + " ELSE 'null' END)"
)
ACTIVE = _quote(ClaimStatus.ACTIVE.value)


# The access record's columns a read gives (``record``), in the order of their parameters;
# its citizen and competences come from the statement.
RECORD_COLUMNS = (
    "id",
    "accessed_at",
    "principal_kind",
    "subject",
    "organisation_id",
    "basis",
    "legal_basis_id",
    "grant_ids",
    "purpose",
    "operation",
)


def _record(citizens: str, first: int) -> tuple[str, str, str]:
    """The CTE that writes one read's access record while its citizen exists (as
    ``record_access``, which the resolver path calls), the column telling it was written, and
    the join that gives it."""
    table = AccessRecord.__table__
    given = ", ".join(
        f"${first + i}::{table.c[name].type.compile(dialect=postgresql.dialect())}"
        for i, name in enumerate(RECORD_COLUMNS)
    )
    cte = f""",
rec AS (
  INSERT INTO access_records (citizen_id, competence_ids, {", ".join(RECORD_COLUMNS)})
  SELECT p.citizen_id, ARRAY(SELECT DISTINCT x
           FROM unnest(coalesce(pc.ids, '{{}}') || coalesce(sd.ids, '{{}}')) AS x ORDER BY x),
         {given}
  FROM unnest({citizens}::uuid[]) AS p(citizen_id)
  JOIN citizens AS known ON known.citizen_id = p.citizen_id
  LEFT JOIN pc ON pc.citizen_id = p.citizen_id
  LEFT JOIN sd ON sd.citizen_id = p.citizen_id
  RETURNING citizen_id
)"""
    return cte, "rec.citizen_id IS NOT NULL", "\nLEFT JOIN rec ON rec.citizen_id = p.citizen_id"


def _sql(statement: _Statement, base: str, first: int, *, record: bool = False) -> str:
    """The whole statement around the claims' own (``base``, whose parameters come first);
    ``first`` is the number of this statement's first own parameter. ``record``: it also
    writes the read's access record (``RECORD_COLUMNS``, parameters after its own)."""
    citizens, is_self, statuses, used_since, read_at, basis = (f"${first + i}" for i in range(6))
    recording, recorded, joined = _record(citizens, first + 6) if record else ("", "false", "")
    claim_columns = "".join(f", {c}" for c in statement.claim_columns)
    group_columns = "".join(f", {c}" for c in statement.group_columns)
    passport_columns = "".join(f", {c}" for c in statement.passport_columns)
    declared_columns = "".join(f", {c}" for c in statement.declared_columns)
    # What anyone but the citizen sees of a claim's endorsements (``visible``).
    shown = f"({is_self}::boolean OR (x.e->>'revokedAt' IS NULL AND x.e->>'hiddenAt' IS NULL))"
    answer = statement.answer.replace("$read_at", f"{read_at}::text").replace(
        "$basis", f"{basis}::text"
    )
    # Counted beside ``g``, not by a subquery over its own aggregate: a Citus coordinator
    # planned that one wrong ("Aggref found in non-Agg plan node").
    counts, counted = "", ""
    if statement.endorsement_counts:
        counts = f"""
e AS (
  SELECT v.citizen_id, v.competence_id, count(*) AS n, count(DISTINCT o.value) AS d
  FROM k AS v, jsonb_array_elements_text(v.endorsers) AS o
  WHERE v.organisation_id IS NOT NULL AND v.status = {ACTIVE}
    AND ({statuses}::text[] IS NULL OR v.status = ANY({statuses}::text[]))
  GROUP BY v.citizen_id, v.competence_id
),"""
        counted = (
            "\n  LEFT JOIN e ON e.citizen_id = v.citizen_id AND e.competence_id = v.competence_id"
        )
    # The vouchers too: organisations counted by kind for all competences at once (a
    # subquery per competence, over its own aggregates, cost some 3 us each).
    if statement.voucher_columns:
        voucher_columns = "".join(f", {c}" for c in statement.voucher_columns)
        counts += f"""
u AS (
  SELECT v.citizen_id, v.competence_id, v.org_kind AS kind,
         count(DISTINCT v.organisation_id) AS n
  FROM k AS v
  WHERE v.organisation_id IS NOT NULL AND v.status = {ACTIVE}
    AND ({statuses}::text[] IS NULL OR v.status = ANY({statuses}::text[]))
  GROUP BY v.citizen_id, v.competence_id, v.org_kind
),
uv AS (
  SELECT u.citizen_id, u.competence_id{voucher_columns}
  FROM u
  GROUP BY u.citizen_id, u.competence_id
),"""
        counted += (
            "\n  LEFT JOIN uv ON uv.citizen_id = v.citizen_id"
            " AND uv.competence_id = v.competence_id"
        )
    return f"""
WITH c AS ({base}),
k AS (
  SELECT k.*, row_number() OVER (PARTITION BY k.citizen_id ORDER BY k.recorded_at, k.claim_id)
         AS pos, {STATUS_RANK} AS status_rank, coalesce(k.last_used_on, k.acquired_on) AS recent
         {claim_columns}
  FROM (
    SELECT c.*,
      CASE WHEN c.endorsements IS NULL THEN '[]'::json ELSE (
        SELECT coalesce(json_agg(x.e ORDER BY x.n), '[]'::json)
        FROM json_array_elements(c.endorsements) WITH ORDINALITY AS x(e, n)
        WHERE {shown}) END AS shown,
      CASE WHEN c.endorsements IS NULL THEN '[]'::jsonb ELSE (
        SELECT coalesce(jsonb_agg(x.e->>'organisationId'), '[]'::jsonb)
        FROM json_array_elements(c.endorsements) AS x(e)
        WHERE x.e->>'revokedAt' IS NULL AND {shown}) END AS endorsers
    FROM c
  ) k
),{counts}
g AS (
  SELECT v.citizen_id, v.competence_id, min(v.pos) AS pos, min(v.status_rank) AS status_rank,
         CASE WHEN bool_or(v.status = {ACTIVE}) THEN max(v.recent) FILTER
              (WHERE v.status = {ACTIVE}) ELSE max(v.recent) END AS recent
         {group_columns}
  FROM k AS v{counted}
  WHERE v.organisation_id IS NOT NULL
    AND ({statuses}::text[] IS NULL OR v.status = ANY({statuses}::text[]))
  GROUP BY v.citizen_id, v.competence_id
),
pc AS (
  SELECT g.citizen_id, array_agg(g.competence_id) AS ids {passport_columns}
  FROM g
  WHERE {used_since}::date IS NULL OR g.recent >= {used_since}::date
  GROUP BY g.citizen_id
),
sd AS (
  SELECT k.citizen_id, array_agg(k.competence_id) AS ids {declared_columns}
  FROM k
  WHERE k.organisation_id IS NULL AND k.status = {ACTIVE}
    AND ({statuses}::text[] IS NULL OR {ACTIVE} = ANY({statuses}::text[]))
    AND ({used_since}::date IS NULL OR k.recent >= {used_since}::date)
  GROUP BY k.citizen_id
){recording}
SELECT p.citizen_id, {answer}, pc.ids, sd.ids, {recorded}, {read_at}::text, {basis}::text
FROM unnest({citizens}::uuid[]) AS p(citizen_id)
LEFT JOIN pc ON pc.citizen_id = p.citizen_id
LEFT JOIN sd ON sd.citizen_id = p.citizen_id{joined}
"""


# -- the selection --------------------------------------------------------------------------

Build = Callable[[str, list[FieldDetails]], str]


class _Compiler:
    """Walks the selection with graphql-core's own field collection (fragments, aliases,
    ``@skip``/``@include``), one SQL expression per response key."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDetails],
        variable_values: Any,
        operation: OperationDefinitionNode,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variable_values = variable_values
        self.operation = operation
        self.statement = _Statement()

    # The object types, each as the JSON text of its keys' expressions.

    def object(
        self,
        type_name: str,
        details: list[FieldDetails],
        fields: Callable[[str, list[FieldDetails]], str | None],
    ) -> str:
        object_type = self.schema.get_type(type_name)
        assert isinstance(object_type, GraphQLObjectType)
        for detail in details:
            if detail.defer_usage is not None or detail.fragment_variable_values is not None:
                raise NotCompilable("deferred, or fragment variables")
        collected = collect_subfields(
            self.schema,
            self.fragments,
            self.variable_values,
            self.operation,
            object_type,
            details,
        )
        if collected.new_defer_usages or collected.forbidden_directive_instances:
            raise NotCompilable("deferral")
        arguments: list[str] = []
        separator = "{"
        for key, key_details in collected.grouped_field_set.items():
            name = key_details[0].node.name.value
            if name == "__typename":
                expression: str | None = Always(_quote(f'"{type_name}"'))
            elif object_type.fields.get(name) is None:
                continue  # graphql-core leaves it out of the answer too
            else:
                expression = fields(name, key_details)
            if expression is None:
                raise NotCompilable(f"{type_name}.{name}")
            # A response key is a GraphQL name ([_A-Za-z][_0-9A-Za-z]*): nothing to escape.
            arguments += [_quote(f'{separator}"{key}":'), _json(expression)]
            separator = ","
        return Always(_concat([*arguments, "'}'"] if arguments else ["'{}'"]))

    def lang(self, type_name: str, name: str, details: list[FieldDetails]) -> str:
        object_type = self.schema.get_type(type_name)
        assert isinstance(object_type, GraphQLObjectType)
        arguments = get_argument_values(
            object_type.fields[name], details[0].node, self.variable_values
        )
        given = arguments.get("lang")
        if given is None:
            return Language.NL.value  # what a passport's competences are read in
        value = getattr(given, "value", given)
        if value not in {language.value for language in Language}:
            raise NotCompilable("a language this compiler does not know")
        return str(value)

    def passport(self, details: list[FieldDetails]) -> str:
        def field_of(name: str, sub: list[FieldDetails]) -> str | None:
            if name == "citizenId":
                return _quoted("p.citizen_id::text")
            if name == "readAt":
                return "$read_at"
            if name == "basis":
                return "$basis"
            if name == "competences":
                each = self.statement.group(self.passport_competence(sub))
                column = self.statement.competences(
                    _list(f"g.{each}", "g.status_rank, g.recent DESC, g.pos")
                )
                return Json(f"coalesce(pc.{column}, '[]')")
            if name == "selfDeclared":
                # Built as they are gathered, so only self-declared claims are written.
                each = self.self_declared(sub)
                column = self.statement.declared(_list(each, "k.recorded_at DESC, k.pos"))
                return Json(f"coalesce(sd.{column}, '[]')")
            return None

        return self.object("Passport", details, field_of)

    def passport_competence(self, details: list[FieldDetails]) -> str:
        """Over ``v`` (the competence's claims) grouped: ``aggregate``'s rules."""
        active = f"v.status = {ACTIVE}"

        def field_of(name: str, sub: list[FieldDetails]) -> str | None:
            if name == "competence":
                column = self.statement.claim(self.competence(sub, "k"))
                return Json(f"(array_agg(v.{column} ORDER BY v.pos))[1]")
            if name == "status":
                return STATUS_BY_RANK
            if name == "highestLevel":
                column = self.statement.claim(self.proficiency(sub, "k"))
                ranked = f"array_agg(v.{column} ORDER BY v.proficiency_rank DESC, v.pos)"
                return Json(
                    f"(CASE WHEN bool_or({active}) THEN ({ranked} FILTER (WHERE {active} AND "
                    f"v.proficiency_rank IS NOT NULL))[1] ELSE ({ranked} FILTER (WHERE "
                    "v.proficiency_rank IS NOT NULL))[1] END)"
                )
            if name == "firstAcquiredOn":
                return "min(v.acquired_on)"
            if name == "lastUsedOn":
                return (
                    f"(CASE WHEN bool_or({active}) THEN max(v.recent) FILTER (WHERE {active}) "
                    "ELSE max(v.recent) END)"
                )
            if name == "distinctOrganisations":
                return _number(f"count(DISTINCT v.organisation_id) FILTER (WHERE {active})")
            if name == "vouchers":
                # Built per competence in ``uv``, one row each: any of its rows carries it.
                column = self.statement.vouchers(_list(self.voucher(sub), 'u.kind COLLATE "C"'))
                return Json(f"coalesce(max(uv.{column}), '[]')")
            if name == "claims":
                # Built as they are gathered, not carried through ``k`` and the sort.
                return _list(self.claim(sub, "v"), "v.recorded_at DESC, v.pos")
            if name in ("endorsements", "endorsingOrganisations"):
                self.statement.endorsement_counts = self.statement.endorsements = True
                return _number(f"coalesce(max(e.{'n' if name == 'endorsements' else 'd'}), 0)")
            return None

        return self.object("PassportCompetence", details, field_of)

    def voucher(self, details: list[FieldDetails]) -> str:
        def field_of(name: str, _sub: list[FieldDetails]) -> str | None:
            if name == "organisationKind":
                return _enum("u.kind", OrganisationKind)
            if name == "organisations":
                return _number("u.n")
            return None

        return self.object("VoucherCount", details, field_of)

    def competence(self, details: list[FieldDetails], row: str) -> str:
        def field_of(name: str, sub: list[FieldDetails]) -> str | None:
            if name == "uri":
                return f"{row}.uri"
            if name == "skillType":
                return _nonempty_enum(f"{row}.skill_type", SkillType)
            if name == "reuseLevel":
                return _nonempty_enum(f"{row}.reuse_level", ReuseLevel)
            if name in ("label", "description"):
                lang = self.lang("Competence", name, sub)
                values = f"{row}.preferred_labels" if name == "label" else f"{row}.descriptions"
                found = Json(
                    _localized(
                        values, lang, lambda text, language: self.localized(sub, text, language)
                    )
                )
                if name == "description":
                    return found
                # No label at all: the URI, in no language (``Labelled.label``).
                unlabelled = self.localized(sub, f"{row}.uri", "'und'::text")
                return Json(f"coalesce({found}, {unlabelled})")
            return None

        return self.object("Competence", details, field_of)

    def localized(self, details: list[FieldDetails], text: str, language: str) -> str:
        def field_of(name: str, _sub: list[FieldDetails]) -> str | None:
            return {"text": text, "language": language}.get(name)

        return self.object("LocalizedText", details, field_of)

    def proficiency(self, details: list[FieldDetails], row: str) -> str:
        def field_of(name: str, _sub: list[FieldDetails]) -> str | None:
            if name == "scale":
                return _enum(f"{row}.proficiency_scale", ProficiencyScale)
            if name == "level":
                return f"coalesce({row}.proficiency_level, '')"
            if name == "rank":
                return _number(f"coalesce({row}.proficiency_rank, 0)")
            return None

        built = self.object("Proficiency", details, field_of)
        return Json(
            f"(CASE WHEN coalesce({row}.proficiency_scale, '') = '' THEN NULL ELSE {built} END)"
        )

    def evidence(self, details: list[FieldDetails], row: str) -> str:
        def item(of: str) -> str:
            def field_of(name: str, _sub: list[FieldDetails]) -> str | None:
                if name == "kind":
                    return _enum(f"{of}->>'kind'", EvidenceKind)
                if name in ("title", "url", "digest"):
                    return f"{of}->>{_quote(name)}"
                if name == "issuedOn":
                    return f"nullif({of}->>'issued_on', '')"
                return None

            return self.object("Evidence", details, field_of)

        # One item, the most common, is written as it is: the subquery over the items, and
        # its sort, cost some 2.5 us a claim.
        items = _list(item("x.item"), "x.n")
        return Json(
            f"(CASE coalesce(jsonb_array_length({row}.evidence), 0) WHEN 0 THEN '[]' "
            f"WHEN 1 THEN '[' || {item(f'({row}.evidence->0)')} || ']' "
            f"ELSE (SELECT {items} FROM "
            f"jsonb_array_elements({row}.evidence) WITH ORDINALITY AS x(item, n)) END)"
        )

    def claim(self, details: list[FieldDetails], row: str) -> str:
        def field_of(name: str, sub: list[FieldDetails]) -> str | None:
            simple = {
                "id": _quoted(f"{row}.claim_id::text"),
                "issuerRole": f"{row}.issuer_role",
                "context": f"{row}.context",
                "assessmentMethod": _enum(f"{row}.assessment_method", AssessmentMethod),
                "learningContext": _enum(f"{row}.learning_context", LearningContext),
                "acquiredOn": f"{row}.acquired_on",
                "lastUsedOn": f"{row}.last_used_on",
                "validUntil": f"{row}.valid_until",
                "recordedAt": _quoted(_instant_utc(f"{row}.recorded_at")),
                "status": _enum(f"{row}.status", ClaimStatus),
                "supersedes": _quoted(f"{row}.supersedes_claim_id::text"),
                "supersededBy": _quoted(f"{row}.superseded_by::text"),
                "externalRef": "NULL::text",  # the issuing organisation's only, never here
            }
            if name in simple:
                return simple[name]
            if name == "competence":
                return self.competence(sub, row)
            if name == "issuer":
                return self.issuer(sub, row)
            if name == "proficiency":
                return self.proficiency(sub, row)
            if name == "evidence":
                return self.evidence(sub, row)
            if name == "revocation":
                revocation = self.revocation(sub, row)
                return Json(f"(CASE WHEN {row}.revoked_at IS NULL THEN NULL ELSE {revocation} END)")
            if name == "endorsements":
                self.statement.endorsements = True
                endorsements = _list(self.endorsement(sub, row), "y.n")
                return Json(
                    f"(CASE WHEN {row}.endorsements IS NULL THEN '[]' ELSE (SELECT "
                    f"coalesce({endorsements}, '[]') "
                    f"FROM json_array_elements({row}.shown) WITH ORDINALITY AS y(e, n)) END)"
                )
            return None

        return self.object("Claim", details, field_of)

    def issuer(self, details: list[FieldDetails], row: str) -> str:
        def field_of(name: str, _sub: list[FieldDetails]) -> str | None:
            return {
                "id": _quoted(f"{row}.organisation_id::text"),
                "name": f"{row}.org_name",
                "kind": _enum(f"{row}.org_kind", OrganisationKind),
                "clientId": f"{row}.api_client_id",
            }.get(name)

        return self.object("Issuer", details, field_of)

    def revocation(self, details: list[FieldDetails], row: str) -> str:
        def field_of(name: str, _sub: list[FieldDetails]) -> str | None:
            return {
                "reason": f"coalesce({row}.revocation_reason, '')",
                "revokedAt": _quoted(_instant_utc(f"{row}.revoked_at")),
            }.get(name)

        return self.object("Revocation", details, field_of)

    def endorsement(self, details: list[FieldDetails], row: str) -> str:
        def field_of(name: str, sub: list[FieldDetails]) -> str | None:
            if name == "endorser":
                return self.endorser(sub)
            revoked = "y.e->>'revokedAt'"
            return {
                "id": "y.e->>'id'",
                "claimId": _quoted(f"{row}.claim_id::text"),
                "endorserRole": "y.e->>'role'",
                "statement": "y.e->>'statement'",
                "endorsedAt": _quoted(_instant_json("y.e->>'endorsedAt'")),
                "status": Always(
                    f"(CASE WHEN {revoked} IS NULL "
                    f"THEN {_quote(_json_string(EndorsementStatus.ACTIVE.name))} "
                    f"ELSE {_quote(_json_string(EndorsementStatus.REVOKED.name))} END)"
                ),
                "revokedAt": _quoted(_instant_json(revoked)),
                "revocationReason": "y.e->>'reason'",
                "hidden": _number("y.e->>'hiddenAt' IS NOT NULL"),
            }.get(name)

        return self.object("Endorsement", details, field_of)

    def endorser(self, details: list[FieldDetails]) -> str:
        def field_of(name: str, _sub: list[FieldDetails]) -> str | None:
            return {
                "id": "y.e->>'organisationId'",
                "name": "y.e->>'name'",
                "kind": _enum("y.e->>'kind'", OrganisationKind),
                "clientId": "y.e->>'clientId'",
            }.get(name)

        return self.object("Endorser", details, field_of)

    def self_declared(self, details: list[FieldDetails]) -> str:
        def field_of(name: str, sub: list[FieldDetails]) -> str | None:
            simple = {
                "id": _quoted("k.claim_id::text"),
                "context": "k.context",
                "learningContext": _enum("k.learning_context", LearningContext),
                "acquiredOn": "k.acquired_on",
                "lastUsedOn": "k.last_used_on",
                "declaredAt": _quoted(_instant_utc("k.recorded_at")),
            }
            if name in simple:
                return simple[name]
            if name == "competence":
                return self.competence(sub, "k")
            if name == "proficiency":
                return self.proficiency(sub, "k")
            if name == "evidence":
                return self.evidence(sub, "k")
            return None

        return self.object("SelfDeclaredCompetence", details, field_of)


# -- compiled once per selection ------------------------------------------------------------


class Selection:
    """A compiled passport selection: its statement for each combination of claim filters."""

    def __init__(self, statement: _Statement, nodes: tuple[FieldNode, ...]) -> None:
        self.statement = statement
        self.nodes = nodes  # held, so their ids are not reused while the entry lives
        self.sql: dict[tuple[bool, ...], tuple[str, tuple[tuple[str, Any], ...]]] = {}

    def sql_for(
        self, flt: PassportClaimsFilter, *, record: bool = False
    ) -> tuple[str, tuple[tuple[str, Any], ...]]:
        shape = (
            bool(flt.skill_types),
            bool(flt.issuer_kinds),
            bool(flt.learning_contexts),
            record,
        )
        found = self.sql.get(shape)
        if found is None:
            base, parameters = passport_claims_sql(
                scope=False,
                skill_types=shape[0],
                issuer_kinds=shape[1],
                learning_contexts=shape[2],
                many=True,
                json_as_text=False,
                endorsements=self.statement.endorsements,
            )
            found = self.sql[shape] = (
                _sql(self.statement, base, len(parameters) + 1, record=record),
                parameters,
            )
        return found

    def statement_for(
        self,
        scopes: Mapping[uuid.UUID, frozenset[int] | None],
        claims: PassportClaimsFilter,
        flt: PassportFilter,
        basis: AccessBasis,
        read_at: datetime,
        record: Mapping[str, Any] | None = None,
    ) -> tuple[str, tuple[Any, ...]]:
        """The statement for this read, and its parameters; ``record``: the access record's
        columns (``RECORD_COLUMNS``) of a read of one citizen, written by the statement."""
        if record is not None and len(scopes) != 1:
            raise ValueError("a statement records the read of one citizen")
        sql, parameters = self.sql_for(claims, record=record is not None)
        pairs = sorted(
            (citizen, competence)
            for citizen, scope in scopes.items()
            if scope is not None
            for competence in scope
        )
        values: dict[str, Any] = {
            "unscoped": sorted(c for c, scope in scopes.items() if scope is None),
            "scoped_citizens": [citizen for citizen, _ in pairs],
            "scoped_competences": [competence for _, competence in pairs],
            "today": clock.today(),
            "skill_types": sorted(claims.skill_types or ()),
            "issuer_kinds": sorted(claims.issuer_kinds or ()),
            "learning_contexts": sorted(claims.learning_contexts or ()),
        }
        given = (
            *(values.get(name, default) for name, default in parameters),
            list(scopes),
            basis is AccessBasis.SELF,
            sorted(s.value for s in flt.statuses) if flt.statuses else None,
            flt.used_since,
            read_at.isoformat(),
            basis.name,
            *(() if record is None else (record[name] for name in RECORD_COLUMNS)),
        )
        return sql, given

    async def __call__(
        self,
        session: AsyncSession,
        scopes: Mapping[uuid.UUID, frozenset[int] | None],
        claims: PassportClaimsFilter,
        flt: PassportFilter,
        basis: AccessBasis,
        read_at: datetime,
        record: Mapping[str, Any] | None = None,
    ) -> dict[uuid.UUID, Rendered]:
        """Each citizen's answer under their own scope (None: the whole passport); with
        ``record`` (one citizen), the read recorded too."""
        sql, given = self.statement_for(scopes, claims, flt, basis, read_at, record)
        rows = await (await driver(session)).fetch(sql, *given)
        built: dict[uuid.UUID, Rendered] = {}
        for citizen, data, verified, declared, recorded, *_ in rows:
            shown = tuple(sorted({*(verified or ()), *(declared or ())}))
            built[citizen] = Rendered(orjson.Fragment(data), shown, recorded)
        return built


_selections: OrderedDict[tuple[Any, ...], Selection | None] = OrderedDict()
# The variables each selection reads, by its nodes (held, so their ids are not reused).
_used: dict[tuple[int, ...], tuple[tuple[FieldNode, ...], tuple[str, ...]]] = {}


def compiled(info: Any) -> Selection | None:
    """The compiled statement for the passport under this field (``info``: the resolver's),
    or None when the setting is off or the selection holds what this module does not compile.
    Kept per field nodes (the parsed-document cache hands out the same ones for the same text)
    and the values of the variables used below them (languages, @skip/@include)."""
    if not info.context.settings.compiled_reads:
        return None
    info = getattr(info, "_raw_info", info)  # Strawberry's Info wraps graphql-core's
    nodes = tuple(info.field_nodes)
    variables = info.variable_values
    if not isinstance(variables, VariableValues):  # Strawberry hands resolvers the values
        variables = VariableValues({}, variables or {})
    ids = tuple(map(id, nodes))
    held = _used.get(ids)
    if held is None:
        held = _used[ids] = (nodes, tuple(sorted(variables_below(nodes, info.fragments))))
        if len(_used) > MAX_SELECTIONS:
            del _used[next(iter(_used))]
    used = held[1]
    coerced = variables.coerced
    try:
        key = (
            id(info.schema),
            *ids,
            *((name, _frozen(coerced.get(name))) for name in used),
        )
        hash(key)
    except TypeError:
        return None
    if key in _selections:
        _selections.move_to_end(key)
        return _selections[key]
    selection = compile_selection(info.schema, info.operation, nodes, info.fragments, variables)
    _selections[key] = selection
    if len(_selections) > MAX_SELECTIONS:
        _selections.popitem(last=False)
    return selection


def compile_selection(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    nodes: tuple[FieldNode, ...],
    fragments: Mapping[str, Any],
    variables: VariableValues,
) -> Selection | None:
    """The statement for the passport selected by ``nodes`` (a ``Passport`` field's nodes in
    ``operation``), or None when it holds what this module does not compile. Uncached:
    ``compiled`` keeps what this makes."""
    details = {name: FragmentDetails(node) for name, node in fragments.items()}
    compiler = _Compiler(schema, details, variables, operation)
    try:
        compiler.statement.answer = compiler.passport([FieldDetails(node, None) for node in nodes])
    except NotCompilable:
        return None
    return Selection(compiler.statement, nodes)


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def variables_below(nodes: Iterable[FieldNode], fragments: Mapping[str, Any]) -> set[str]:
    """The variables named anywhere in the selections below ``nodes`` (not their arguments)."""
    found: set[str] = set()
    seen: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, VariableNode):
            found.add(node.name.value)
            return
        if isinstance(node, FragmentSpreadNode):
            name = node.name.value
            if name not in seen and name in fragments:
                seen.add(name)
                walk(fragments[name])
        for key in getattr(node, "keys", ()):
            if key == "loc":
                continue
            value = getattr(node, key, None)
            if isinstance(value, tuple | list):
                for item in value:
                    if hasattr(item, "keys"):
                        walk(item)
            elif hasattr(value, "keys"):
                walk(value)

    for node in nodes:
        selection_set: SelectionSetNode | None = node.selection_set
        if selection_set is not None:
            walk(selection_set)
    return found


def answer(view: Any, resolve: Callable[[Any], Any]) -> Any:
    """The field's value: the compiled answer when the read built one, else the view as the
    resolvers complete it."""
    rendered: Rendered | None = getattr(view, "rendered", None)
    return Answer(rendered.data) if rendered is not None else resolve(view)
