"""What operators watch: /metrics, request ids in responses and logs, and optional traces that
carry no personal data."""

from __future__ import annotations

import io
import logging
import re

import httpx
import pytest
from graphql import parse
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service import observability
from service.app import create_app
from service.auth.keys import load_or_create_dev_key
from service.logs import formatter
from service.settings import Settings
from tests import factories
from tests.citizen_api import MY_PASSPORT
from tests.graphql_client import Api, Partner
from tests.test_claims_api import ISSUE, issue


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format, 0 if absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and wanted in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_requests_operations_claims_and_pool(api: Api, school: Partner) -> None:
    before = (await api.http.get("/metrics")).text
    await issue(api, school, factories.claim_input(factories.insz()))
    response = await api.http.post(
        "/graphql",
        json={
            "query": ISSUE,
            "variables": {"input": factories.claim_input("nonsense")},
            "operationName": None,
        },
        headers={"Authorization": f"Bearer {school.token}"},
    )
    assert response.status_code == 200
    named = await api.http.post(
        "/graphql",
        json={"query": "query PassportOfMine { me { passport { citizenId } } }"},
        headers={"Authorization": f"Bearer {api.citizen(factories.insz())}"},
    )
    assert named.status_code == 200
    after = await api.http.get("/metrics")
    assert after.status_code == 200
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    issued = "passport_claims_issued_total"
    assert _sample(text, issued, organisation_kind="education_provider") == (
        _sample(before, issued, organisation_kind="education_provider") + 1
    )
    assert (
        _sample(
            text,
            "passport_graphql_operation_duration_seconds_count",
            operation="me",
            type="query",
        )
        >= 1
    )
    assert (
        _sample(
            text,
            "passport_http_request_duration_seconds_count",
            method="POST",
            route="/graphql",
            status="200",
        )
        >= 3
    )
    assert "passport_db_pool_connections" in text
    assert 'state="size"' in text


def test_operation_labels_are_bounded_by_the_schema() -> None:
    assert (
        observability.operation_label(parse("query Anything { me { grants { id } } }"), None)
        == "me"
    )
    assert observability.operation_label(parse("{ __typename }"), None) == "introspection"
    assert (
        observability.operation_label(parse("query A { me { grants { id } } }"), "B") == "invalid"
    )
    assert observability.operation_label(None, None) == "invalid"


async def test_request_ids_are_kept_or_made_and_reach_the_logs(api: Api) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter())
    access = logging.getLogger("passport.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        kept = await api.http.get("/me/export", headers={"X-Request-ID": "trace-abc-12345"})
        made = await api.http.get("/me/export", headers={"X-Request-ID": "bad id\twith spaces"})
    finally:
        access.removeHandler(handler)
    assert kept.headers["x-request-id"] == "trace-abc-12345"
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", made.headers["x-request-id"])
    logged = stream.getvalue()
    assert '"request_id": "trace-abc-12345"' in logged
    assert '"route": "/me/export"' in logged and '"status": 401' in logged
    assert "with spaces" not in logged


async def test_traces_cover_http_and_sql_without_personal_data(
    settings: Settings, school: Partner, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    monkeypatch.setattr(observability, "span_exporter", lambda: exporter)
    traced = settings.model_copy(update={"otel_enabled": True})
    application = create_app(traced)
    citizen = factories.insz()
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://traced") as http:
            api = Api(http=http, key=load_or_create_dev_key(settings.data_dir), settings=traced)
            await api.gql(school.token, ISSUE, {"input": factories.claim_input(citizen)})
            me = api.citizen(citizen)
            await api.gql(me, MY_PASSPORT)
            await http.get(f"/me/export?insz={citizen}")  # whatever a client puts in a URL
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.force_flush()
    spans = exporter.get_finished_spans()
    names = {span.name for span in spans}
    assert any(name.startswith("POST /graphql") for name in names), names
    statements = [
        str(attributes["db.statement"])
        for attributes in (span.attributes or {} for span in spans)
        if "db.statement" in attributes
    ]
    # Those the hot paths send straight to the driver too: the read's access record.
    assert any("INSERT INTO access_records" in statement for statement in statements), statements
    graphql = [s for s in spans if s.attributes and "graphql.operation.type" in s.attributes]
    assert graphql, names
    dump = repr([(span.name, dict(span.attributes or {})) for span in spans])
    for secret in (citizen, me, school.token):
        assert secret not in dump
