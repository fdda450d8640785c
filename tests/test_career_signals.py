"""Labour-market signals (`passport import-signals FILE`) and the warning lights built on them
and on ESCO's collections. The signal files are written by the tests.

Signals are reference data shared by the whole database, so every test here starts and ends
with none imported (``no_signals``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.career import signals
from service.models import AccessRecord, LabourMarketSignal, SignalImport
from tests import factories
from tests.career_api import (
    CHECK,
    FOOTWEAR_COMPONENTS,
    FW,
    MATCHES,
    PACK_GOODS,
    PATHS,
    SIZING,
    SUPPLY_CHAIN,
    USE_IT_TOOLS,
    WAREHOUSING,
    F,
    W,
    kinds,
    run,
    worked,
)
from tests.citizen_api import grant
from tests.conftest import make_partner
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue

HEADER = "occupationUri,skillUri,iscoCode,kind,region,horizonYear,source,sourceUrl,publishedOn"
VDAB = "VDAB knelpuntberoepen 2025"
GOOD = [
    f"{W},,,shortage,BE2,2030,{VDAB},https://www.vdab.be/trends/knelpuntberoepen,2025-06-01",
    f",{SUPPLY_CHAIN},,falling_demand,BE,2030,Test forecast,,2025-05-01",
    ",,9321,RISING_DEMAND,BE2,2028,Test forecast,,2025-05-01",
]
BAD = [  # (row, the field its problem names)
    (f"{W}x,,,shortage,BE,2030,S,,2025-01-01", "occupationUri"),
    (f",{factories.SKILL_GROUP},,shortage,BE,2030,S,,2025-01-01", "skillUri"),
    (f"{W},,,booming,BE,2030,S,,2025-01-01", "kind"),
    (f"{W},,,shortage,XX1,2030,S,,2025-01-01", "region"),
    (f"{W},,,shortage,BE,soon,S,,2025-01-01", "horizonYear"),
    (f"{W},,,shortage,BE,2030,S,,2999-01-01", "publishedOn"),
    (f"{W},{SIZING},,shortage,BE,2030,S,,2025-01-01", ""),
    (",,9999,shortage,BE,2030,S,,2025-01-01", "iscoCode"),
    (GOOD[0], ""),  # the same as line 2
]


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


async def _by_source(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(LabourMarketSignal.source, func.count()).group_by(LabourMarketSignal.source)
        )
        return {source: count for source, count in rows}


async def test_every_row_is_checked_and_reported(
    no_signals: None, engine: AsyncEngine, tmp_path: Path
) -> None:
    path = _csv(tmp_path / "signals.csv", GOOD + [row for row, _ in BAD])
    checked = await signals.import_signals(engine, path, dry_run=True)
    assert checked.status == "checked" and await _by_source(engine) == {}
    report = await signals.import_signals(engine, path)
    assert report.status == "imported"
    assert [(r.line, r.status) for r in report.rows] == [
        (line, "accepted" if line <= 4 else "rejected") for line in range(2, 14)
    ]
    for row, (_, field) in zip(report.rows[3:], BAD, strict=True):
        [problem] = row.problems
        assert problem.field == f"line {row.line}" + (f".{field}" if field else ""), problem
        assert str(row.line) in problem.field
    assert report.rows[-1].problems[0].message == "the same signal as line 2"
    assert report.summary()["summary"] | {"seconds": 0, "importId": 0} == {
        "status": "imported",
        "file": "signals.csv",
        "importId": 0,
        "rows": 12,
        "accepted": 3,
        "rejected": 9,
        "sources": ["Test forecast", VDAB],
        "replacedSignals": 0,
        "seconds": 0,
    }
    assert await _by_source(engine) == {VDAB: 1, "Test forecast": 2}
    # The same rows again, in another order: nothing changes.
    shuffled = GOOD[:]
    random.Random(3).shuffle(shuffled)
    again = await signals.import_signals(engine, _csv(tmp_path / "again.csv", shuffled))
    assert (again.status, again.import_id) == ("unchanged", report.import_id)
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(SignalImport)) == 1
    # A file that is no signal file at all is refused whole.
    (tmp_path / "other.csv").write_text("name,value\nx,1\n")
    with pytest.raises(signals.SignalFileError, match="header"):
        await signals.import_signals(engine, tmp_path / "other.csv")
    (tmp_path / "broken.json").write_text('[{"kind": ')
    with pytest.raises(signals.SignalFileError, match="not valid JSON"):
        await signals.import_signals(engine, tmp_path / "broken.json")


async def test_an_import_replaces_its_sources_and_only_once_it_is_complete(
    no_signals: None, engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await signals.import_signals(engine, _csv(tmp_path / "a.csv", GOOD))
    cedefop = [
        {
            "skillUri": PACK_GOODS,
            "kind": "rising_demand",
            "region": "BE",
            "horizonYear": 2035,
            "source": "Cedefop skills forecast",
            "publishedOn": "2025-02-01",
        },
        {"skillUri": PACK_GOODS, "kind": "rising_demand"},  # incomplete: reported, not imported
        "not an object",
    ]
    json_file = tmp_path / "b.json"
    json_file.write_text(json.dumps(cedefop))
    report = await signals.import_signals(engine, json_file)
    assert [(r.line, r.status) for r in report.rows] == [
        (1, "accepted"),
        (2, "rejected"),
        (3, "rejected"),
    ]
    assert {p.field for p in report.rows[1].problems} >= {"line 2.region", "line 2.source"}
    assert await _by_source(engine) == {
        VDAB: 1,
        "Test forecast": 2,
        "Cedefop skills forecast": 1,
    }
    newer = [f",{SUPPLY_CHAIN},,rising_demand,BE,2031,Test forecast,,2025-09-01"]
    new_file = _csv(tmp_path / "c.csv", newer)

    # An import that fails once its rows are written leaves the previous one as it was.
    async def broken(*args: Any) -> int:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(signals, "_replace", broken)
    with pytest.raises(RuntimeError):
        await signals.import_signals(engine, new_file)
    monkeypatch.undo()
    assert await _by_source(engine) == {
        VDAB: 1,
        "Test forecast": 2,
        "Cedefop skills forecast": 1,
    }
    replaced = await signals.import_signals(engine, new_file)
    assert (replaced.status, replaced.replaced_signals) == ("imported", 2)
    assert await _by_source(engine) == {
        VDAB: 1,
        "Test forecast": 1,
        "Cedefop skills forecast": 1,
    }
    async with engine.connect() as conn:
        imports = {
            row.file_name: (row.status, row.sources)
            for row in await conn.execute(select(SignalImport))
        }
    assert imports == {
        "a.csv": ("complete", [VDAB]),  # what it said of VDAB is still current
        "b.json": ("complete", ["Cedefop skills forecast"]),
        "c.csv": ("complete", ["Test forecast"]),
    }


def test_the_command_reports_each_row(database_url: str, no_signals: None, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from service.cli import app
    from service.settings import get_settings

    env = {"PASSPORT_DATABASE_URL": database_url, "PASSPORT_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()
    get_settings.cache_clear()
    try:
        mixed = _csv(tmp_path / "mixed.csv", [GOOD[0], BAD[2][0]])
        result = runner.invoke(app, ["import-signals", str(mixed)], env=env)
        assert result.exit_code == 1, result.output  # a row was rejected
        lines = [json.loads(line) for line in result.output.splitlines()]
        assert lines[0] == {"line": 2, "status": "accepted"}
        assert lines[1]["status"] == "rejected"
        assert lines[1]["problems"][0]["field"] == "line 3.kind"
        assert lines[2]["summary"]["status"] == "imported"
        clean = _csv(tmp_path / "clean.csv", GOOD)
        result = runner.invoke(app, ["import-signals", str(clean), "--dry-run"], env=env)
        assert result.exit_code == 0 and '"status": "checked"' in result.output
        refused = runner.invoke(app, ["import-signals", str(tmp_path / "nothing.csv")], env=env)
        assert refused.exit_code == 2 and "Traceback" not in refused.output
    finally:
        get_settings.cache_clear()


async def _holder(api: Api, school: Partner, *uris: str, used: str = "2025-01-01") -> str:
    citizen = factories.insz()
    for uri in uris:
        await issue(
            api,
            school,
            factories.claim_input(citizen, uri, acquiredOn="2010-01-01", lastUsedOn=used),
        )
    return citizen


async def test_without_forecasts_only_esco_and_passport_lights_show(
    no_signals: None, api: Api, school: Partner
) -> None:
    citizen = await _holder(api, school, PACK_GOODS)
    me = api.citizen(citizen)
    result = await run(api, me, CHECK, "competenceCheck", citizen={"insz": citizen}, occupation=FW)
    assert result["signals"]["forecastsLoaded"] is False and result["signals"]["sources"] == []
    assert result["signals"]["nl"] == {
        "text": "Er zijn geen arbeidsmarktprognoses geladen: enkel signalen op basis van "
        "ESCO-collecties worden getoond.",
        "language": "nl",
    }
    assert result["signals"]["en"]["text"] == (
        "No labour-market forecasts are loaded: only lights based on ESCO's collections are shown."
    )
    lights = {light["kind"]: light for light in result["lights"]}
    assert set(lights) == {"DIGITAL_GAP", "GREEN_GAP"}
    digital = lights["DIGITAL_GAP"]
    assert (digital["color"], digital["competences"]) == ("RED", [{"uri": USE_IT_TOOLS}])
    assert digital["source"] == {
        "kind": "ESCO",
        "name": "ESCO v1.1.1, digitalSkillsCollection",
        "publishedOn": None,
        "region": None,
        "horizonYear": None,
        "url": None,
    }
    assert digital["occupation"] == {"uri": FW}
    assert digital["en"]["text"] == (
        "This occupation asks for 1 digital competence(s) (ESCO digital skills collection) and "
        "the passport shows no verified digital competence at all."
    )
    assert digital["nl"]["language"] == "nl"
    green = lights["GREEN_GAP"]
    assert (green["color"], green["competences"]) == ("AMBER", [{"uri": FOOTWEAR_COMPONENTS}])
    # Other digital competences make it amber; the one asked for puts it out.
    coder = await _holder(api, school, PACK_GOODS, factories.PYTHON)
    found = await run(
        api, api.citizen(coder), CHECK, "competenceCheck", citizen={"insz": coder}, occupation=FW
    )
    assert {x["kind"]: x["color"] for x in found["lights"]}["DIGITAL_GAP"] == "AMBER"
    user = await _holder(api, school, USE_IT_TOOLS)
    found = await run(
        api, api.citizen(user), CHECK, "competenceCheck", citizen={"insz": user}, occupation=FW
    )
    assert "DIGITAL_GAP" not in kinds(found["lights"])
    # A reader who is shown only some competences is told it judges what is shared.
    reader = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))
    await grant(
        api,
        api.citizen(coder),
        granteeKind="ORGANISATION",
        organisationId=str(reader.organisation_id),
        competenceUris=[PACK_GOODS],
    )
    shared = await run(
        api, reader.token, CHECK, "competenceCheck", citizen={"insz": coder}, occupation=FW
    )
    light = {x["kind"]: x for x in shared["lights"]}["DIGITAL_GAP"]
    assert light["color"] == "RED"
    assert "what is shared with you" in light["en"]["text"]
    # Stale competences that matter for the occupation checked: from the passport's dates.
    stale = await _holder(api, school, SUPPLY_CHAIN, used="2012-01-01")
    found = await run(
        api, api.citizen(stale), CHECK, "competenceCheck", citizen={"insz": stale}, occupation=W
    )
    light = {x["kind"]: x for x in found["lights"]}["STALE_FOR_GOAL"]
    assert (light["color"], light["competences"]) == ("AMBER", [{"uri": SUPPLY_CHAIN}])
    assert light["source"]["kind"] == "PASSPORT"
    assert light["source"]["name"] == "lastUsedOn"


async def test_signals_light_up_with_reason_source_and_region(
    no_signals: None, api: Api, school: Partner, engine: AsyncEngine, tmp_path: Path
) -> None:
    rows = [*GOOD, ",,43,falling_demand,BE1,2029,Brussels outlook,,2025-04-01"]
    await signals.import_signals(engine, _csv(tmp_path / "signals.csv", rows))
    citizen = await _holder(api, school, WAREHOUSING, SUPPLY_CHAIN, PACK_GOODS, SIZING)
    me = api.citizen(citizen)
    who = {"insz": citizen}
    result = await run(api, me, CHECK, "competenceCheck", citizen=who, occupation=W)
    assert result["signals"]["forecastsLoaded"] is True
    assert [s["name"] for s in result["signals"]["sources"]] == [
        "Brussels outlook",
        "Test forecast",
        VDAB,
    ]
    lights = {light["kind"]: light for light in result["lights"]}
    assert set(lights) == {"OCCUPATION_SHORTAGE", "OCCUPATION_FALLING", "COMPETENCE_FALLING"}
    shortage = lights["OCCUPATION_SHORTAGE"]
    assert shortage["color"] == "GREEN"
    assert shortage["source"] == {
        "kind": "SIGNAL",
        "name": VDAB,
        "publishedOn": "2025-06-01",
        "region": "BE2",
        "horizonYear": 2030,
        "url": "https://www.vdab.be/trends/knelpuntberoepen",
    }
    assert shortage["nl"] == {
        "text": f"Knelpuntberoep volgens {VDAB} (BE2, horizon 2030): goede vooruitzichten.",
        "language": "nl",
    }
    assert shortage["en"]["text"] == (
        f"A shortage occupation according to {VDAB} (BE2, horizon 2030): good prospects."
    )
    falling = lights["OCCUPATION_FALLING"]  # W is in ISCO group 4321, so in 43
    assert (falling["color"], falling["source"]["region"]) == ("RED", "BE1")
    held = lights["COMPETENCE_FALLING"]
    assert (held["color"], held["competences"], held["occupation"]) == (
        "AMBER",
        [{"uri": SUPPLY_CHAIN}],
        None,
    )
    # For Antwerp (BE21): the Flemish and the Belgian signals hold, the Brussels one does not.
    antwerp = await run(api, me, CHECK, "competenceCheck", citizen=who, occupation=W, region="be21")
    assert kinds(antwerp["lights"]) == ["COMPETENCE_FALLING", "OCCUPATION_SHORTAGE"]
    # A region that is no NUTS code is a typed error, before anything is read.
    async with engine.connect() as conn:
        before = await conn.scalar(select(func.count()).select_from(AccessRecord))
    bad = await run(api, me, CHECK, "competenceCheck", citizen=who, occupation=W, region="XX9")
    assert (bad["code"], bad["problems"][0]["field"]) == ("VALIDATION_FAILED", "region")
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(AccessRecord)) == before
    # occupationMatches and career paths light up the same way: F is in ISCO group 9321.
    matches = await run(api, me, MATCHES, "occupationMatches", citizen=who, first=5)
    by_occupation = {m["occupation"]["uri"]: m for m in matches["matches"]}
    assert "OCCUPATION_SHORTAGE" in kinds(by_occupation[W]["lights"])
    assert "OCCUPATION_RISING" in kinds(by_occupation[F]["lights"])
    assert matches["signals"]["forecastsLoaded"] is True
    await worked(api, me, W, "2015-01-01", "2020-01-01")
    paths = await run(api, me, PATHS, "careerPaths", citizen=who, first=3)
    finisher = next(p for p in paths["paths"] if p["occupation"]["uri"] == F)
    rising = {x["kind"]: x for x in finisher["lights"]}["OCCUPATION_RISING"]
    assert (rising["color"], rising["source"]["name"]) == ("GREEN", "Test forecast")
    assert rising["en"]["text"] == (
        "Demand for this occupation is rising according to Test forecast (BE2, horizon 2028)."
    )


def test_nuts_codes() -> None:
    for good, normalized in (("BE", "BE"), ("be21", "BE21"), ("EL30", "EL30"), ("NL329", "NL329")):
        assert signals.nuts(good) == normalized
    for bad in ("B", "XX", "BE2100", "BE-2", "ÄB1"):
        with pytest.raises(ValueError, match="NUTS"):
            signals.nuts(bad)


def test_isco_groups_contain_their_subgroups() -> None:
    assert signals.isco_prefixes("4321") == ["4", "43", "432", "4321"]
    assert signals.isco_prefixes(None) == []
