"""The command line: thin commands, CSV with a header, and every error as one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import ORGS_CSV
from mutual.cli import app

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    home = tmp_path / "ws"
    orgs = tmp_path / "orgs.csv"
    orgs.write_text(ORGS_CSV)
    assert run("orgs", "import", str(orgs), "--home", str(home))[0] == 0
    return home


def test_ingest_then_query_prints_csv_with_a_header(ws: Path, tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("org,metric,date,value\nR1H,ga_beds_occupied,2018-12-03,1452\nR1H,ga_beds_open,2018-12-03,1491\n")
    code, out, _ = run("ingest", str(f), "--home", str(ws), "--received-at", "2018-12-04T09:00")
    assert code == 0 and "2 accepted" in out
    code, out, _ = run("query", "--org", "R1H", "--metric", "ga_beds_occupied", "--from", "2018-12-03",
                       "--to", "2018-12-03", "--format", "csv", "--home", str(ws))
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith('"org","metric","period","value"')
    assert lines[1].split(",")[:4] == ['"R1H"', '"ga_beds_occupied"', "2018-12-03", "1452"]
    code, out, _ = run("ingest", str(f), "--home", str(ws))
    assert code == 0 and "already ingested as submission 1" in out


def test_query_as_json_and_parquet(ws: Path, tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("org,metric,date,value\nR1H,ga_beds_occupied,2018-12-03,1452\n")
    run("ingest", str(f), "--home", str(ws), "--received-at", "2018-12-04")
    code, out, _ = run("query", "--metric", "ga_beds_occupied", "--format", "json", "--home", str(ws))
    assert code == 0 and '"value": 1452.0' in out
    target = tmp_path / "out.parquet"
    code, _, _ = run("query", "--metric", "ga_beds_occupied", "--format", "parquet", "--out", str(target),
                     "--home", str(ws))
    assert code == 0 and target.stat().st_size > 0


def test_the_workspace_comes_from_mutual_home_when_home_is_not_given(ws: Path) -> None:
    code, out, _ = run("submissions", env={"MUTUAL_HOME": str(ws)})
    assert code == 0 and "id" in out


@pytest.mark.parametrize(("args", "message"), [
    (["query", "--metric", "nope"], "metric 'nope' is not in the catalogue"),
    (["query", "--metric", "ga_beds_open", "--as-of", "yesterday"], "is not a date or time"),
    (["ingest", "/no/such/file.csv"], "no such file"),
    (["quality", "99"], "no submission 99"),
    (["orgs", "import", "/no/such/orgs.csv"], "No such file"),
])
def test_errors_are_one_line_and_a_non_zero_status(ws: Path, args: list[str], message: str) -> None:
    code, out, err = run(*args, "--home", str(ws))
    assert code != 0
    assert message in out + err
    assert "Traceback" not in out + err


def test_a_missing_workspace_says_how_to_make_one(tmp_path: Path) -> None:
    code, _, err = run("submissions", "--home", str(tmp_path / "none"))
    assert code == 1 and "run `mutual init`" in err


def test_a_rejected_file_is_reported_and_the_status_is_non_zero(ws: Path, tmp_path: Path) -> None:
    f = tmp_path / "odd.csv"
    f.write_text("a,b\n1,2\n")
    code, _, err = run("ingest", str(f), "--home", str(ws))
    assert code == 1 and "rejected: odd.csv: no shipped spec recognises this header" in err
    code, out, _ = run("quality", "1", "--home", str(ws))
    assert code == 0 and "rejected" in out


def test_submissions_can_be_listed_for_one_trust(ws: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("org,metric,date,value\nR1H,ga_beds_open,2018-12-03,1491\n")
    b.write_text("org,metric,date,value\nRAL,ga_beds_open,2018-12-03,900\n")
    run("ingest", str(a), str(b), "--home", str(ws))
    code, out, _ = run("submissions", "--org", "RAL", "--home", str(ws))
    assert code == 0 and "b.csv" in out and "a.csv" not in out


def test_query_history_lists_superseded_versions_and_fhir_writes_measure_reports(ws: Path, tmp_path: Path) -> None:
    first, fix = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("org,metric,date,value\nR1H,ga_beds_occupied,2018-12-03,1450\n")
    fix.write_text("org,metric,date,value\nR1H,ga_beds_occupied,2018-12-03,1452\n")
    run("ingest", str(first), "--home", str(ws), "--received-at", "2018-12-04T09:00")
    run("ingest", str(fix), "--home", str(ws), "--received-at", "2018-12-05T09:00")
    code, out, _ = run("query", "--metric", "ga_beds_occupied", "--history", "--format", "json", "--home", str(ws))
    assert code == 0 and [r["value"] for r in json.loads(out)] == [1450, 1452]
    code, out, _ = run("query", "--metric", "ga_beds_occupied", "--format", "fhir", "--home", str(ws))
    doc = json.loads(out)
    (entry,) = doc["entry"]
    report = entry["resource"]
    assert (doc["resourceType"], report["resourceType"], report["period"]["start"][:10]) == (
        "Bundle", "MeasureReport", "2018-12-03")
    assert report["group"][0]["population"][0]["count"] == 1452, "the current value, not the superseded one"
    back = tmp_path / "back.json"
    back.write_text(out)
    assert run("ingest", str(back), "--home", str(ws))[0] == 0, "what Mutual writes, Mutual reads"


def test_a_bad_date_is_a_usage_error_naming_the_option(ws: Path) -> None:
    code, _out, err = run("query", "--metric", "ga_beds_occupied", "--from", "3rd of May", "--home", str(ws))
    assert code == 2 and "--from" in err and "internal error" not in err and "Traceback" not in err
