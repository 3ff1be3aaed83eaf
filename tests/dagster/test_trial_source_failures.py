"""A bad trial source fails `refresh_trials` in one clear line and leaves an earlier refresh's tables byte-identical;
a truncated stream publishes its partial read only when the source allows it (`allow_partial`)."""

import gzip
import hashlib
import io
import json
import logging
import tarfile

import dagster as dg
import pytest

from deepimagine_core.ctgov.archives import SAMPLE_DIR
from deepimagine_core.store import Store
from deepimagine_dagster.defs.trials import checks
from deepimagine_dagster.defs.trials.assets import raw_studies, trial_tables
from deepimagine_dagster.resources import StoreResource, TrialSourceResource

N_XML = 12
ASSETS = [raw_studies, trial_tables, *checks.unique_key_checks, *checks.has_trial_checks,
          checks.p_values_in_unit_interval, checks.quarantine_rate_under_threshold]


def _xml_members(n: int) -> list[tuple[str, bytes]]:
    out = []
    with tarfile.open(SAMPLE_DIR / "legacy_xml_sample.tar.gz") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".xml"):
                out.append((member.name, tar.extractfile(member).read()))
            if len(out) == n:
                return out
    return out


def _tar_gz(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _v2_studies(n: int) -> list[dict]:
    with gzip.open(SAMPLE_DIR / "v2_json_studies.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(n), fh, strict=False)]


def _refresh(home, source: str, instance, **source_config) -> dg.ExecuteInProcessResult:
    resources = {
        "store": StoreResource(home=str(home)),
        # a generous threshold: this file is about bad sources, not about the quarantine rate
        "trial_source": TrialSourceResource(source=source, max_quarantine_rate=0.5, **source_config),
    }
    return dg.materialize(ASSETS, resources=resources, instance=instance, raise_on_error=False)


def _snapshot(home) -> dict[str, str]:
    tables = Store(home).path("tables")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(tables.iterdir()) if p.is_file()}


def _logged(instance, result, text: str) -> list[tuple[int, str]]:
    """(level, message) of the run's log lines that contain `text`."""
    entries = instance.all_logs(result.run_id)
    return [(e.level, e.user_message) for e in entries if e.dagster_event is None and text in e.user_message]


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return failure.step_failure_data.error.message.strip()


@pytest.fixture
def earlier_refresh(tmp_path):
    """A home whose tables come from a good refresh of 12 legacy XML studies, and their bytes."""
    good = tmp_path / "good.tar.gz"
    good.write_bytes(_tar_gz(_xml_members(N_XML)))
    home = tmp_path / "home"
    with dg.DagsterInstance.ephemeral() as instance:
        assert _refresh(home, str(good), instance).success
    before = _snapshot(home)
    assert Store(home).read_table("trials").num_rows == N_XML and len(before) >= 9
    return home, before


def _bad_source(kind: str, tmp_path) -> str:
    if kind == "empty folder":
        (tmp_path / "empty").mkdir()
        return str(tmp_path / "empty")
    if kind == "folder without studies":
        (tmp_path / "notes").mkdir()
        (tmp_path / "notes" / "README.txt").write_text("no studies here")
        return str(tmp_path / "notes")
    if kind == "missing path":
        return str(tmp_path / "typo" / "studies.tar.gz")
    if kind == "empty archive":
        path = tmp_path / "empty.tar.gz"
        path.write_bytes(_tar_gz([]))
        return str(path)
    if kind == "truncated archive":
        data = _tar_gz(_xml_members(N_XML))
        path = tmp_path / "cut.tar.gz"
        path.write_bytes(data[: len(data) * 2 // 3])
        return str(path)
    if kind == "cut JSON array":
        data = json.dumps(_v2_studies(6)).encode()
        path = tmp_path / "cut.json"
        path.write_bytes(data[: len(data) - 500])
        return str(path)
    if kind == "cut JSON Lines":
        data = "".join(json.dumps(s) + "\n" for s in _v2_studies(6)).encode()
        path = tmp_path / "cut.jsonl"
        path.write_bytes(data[: len(data) - 500])
        return str(path)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["empty folder", "folder without studies", "missing path", "empty archive",
                                  "truncated archive", "cut JSON array", "cut JSON Lines"])
def test_a_bad_source_fails_in_one_line_and_keeps_the_earlier_tables(kind, tmp_path, earlier_refresh):
    home, before = earlier_refresh
    source = _bad_source(kind, tmp_path)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _refresh(home, source, instance)
    assert not result.success
    message = _failure_message(result)
    assert "\n" not in message and source in message, message
    assert "nothing published" in message or "does not exist" in message, message
    if kind in ("truncated archive", "cut JSON array", "cut JSON Lines"):
        assert "stopped early" in message and "studies read before it stopped" in message and "allow_partial" in message
    built = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert built <= {"raw_studies"}  # no trial table
    assert _snapshot(home) == before  # byte-identical
    assert Store(home).read_table("trials").num_rows == N_XML


def test_allow_partial_publishes_the_studies_read_before_the_stop(tmp_path, earlier_refresh):
    home, before = earlier_refresh
    source = _bad_source("truncated archive", tmp_path)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _refresh(home, source, instance, allow_partial=True)
        logged = _logged(instance, result, "partial read published (allow_partial)")
    assert result.success
    trials = Store(home).read_table("trials")
    assert 0 < trials.num_rows < N_XML
    expected = {name.rsplit("/", 1)[-1][:-4] for name, _ in _xml_members(N_XML)}
    assert set(trials.column("nct_id").to_pylist()) < expected
    mats = {m.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    (stop,) = mats["trials"]["stopped_early"].value
    assert f"({trials.num_rows} studies read before it stopped)" in stop
    quarantine = Store(home).read_table("quarantine").to_pylist()
    assert [q["stage"] for q in quarantine if q["level"] == "record"] == ["read"]  # the stop is kept, with its reason
    assert _snapshot(home) != before
    assert [level for level, _ in logged] == [logging.WARNING]


def test_a_failed_blocking_check_stops_downstream_assets_and_logs_an_error(tmp_path):
    """A contract broken by the tables stops an asset built on them in the same run, with an ERROR line."""
    good = tmp_path / "good.tar.gz"
    members = _xml_members(4)
    good.write_bytes(_tar_gz([*members, ("x/NCT99999999.xml", b"<clinical_study><broken")]))

    @dg.asset(deps=["trials"])
    def downstream_of_trials() -> None:
        """Would materialise if it ran."""

    resources = {
        "store": StoreResource(home=str(tmp_path / "home")),
        "trial_source": TrialSourceResource(source=str(good), max_quarantine_rate=0.05),
    }
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([*ASSETS, downstream_of_trials], resources=resources, instance=instance,
                                raise_on_error=False)
        logged = _logged(instance, result, "quarantine_rate_under_threshold failed")
    evaluations = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["quarantine_rate_under_threshold"].passed is False  # 1 of 5 = 20% > 5%
    assert not result.success
    built = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert "trials" in built and "downstream_of_trials" not in built
    ((level, message),) = logged
    assert level == logging.ERROR
    assert "1 of 5 studies quarantined" in message and "threshold 0.05" in message, message
