"""Ingest: every record read ends in trials, quarantine or the counted duplicates; tables match their schemas."""

import gzip
import json

import pyarrow.dataset as ds
import pytest

from deepimagine_core.ctgov import archives
from deepimagine_core.ctgov.ingest import describe_source, ingest, ingest_source
from deepimagine_core.ctgov.records import API_V2_JSON, LEGACY_XML, RawStudy
from deepimagine_core.ctgov.schemas import TABLES
from deepimagine_core.store import Store


def _sample_v2(n=3):
    return [r for _, r in zip(range(n), (r for r in archives.iter_embedded_sample() if r.source_format == API_V2_JSON))]


def test_sample_builds_every_table(sample_store):
    for name, schema in TABLES.items():
        table = ds.dataset(sample_store.table_path(name)).to_table()
        assert table.schema.names == schema.names
    trials = sample_store.read_table("trials")
    assert trials.num_rows >= 340
    formats = set(trials.column("source_format").to_pylist())
    assert formats == {"api_v2_json", "legacy_xml"}
    analyses = sample_store.read_table("outcome_analyses")
    assert analyses.column("p_value").null_count < analyses.num_rows
    assert sample_store.read_table("outcome_results").num_rows > 1000


def test_counts_reconcile_with_bad_and_duplicate_records(tmp_path):
    good = _sample_v2(3)
    newer = RawStudy(API_V2_JSON, "test:newer", json.loads(json.dumps(good[0].payload)))
    newer.payload["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = "2099-01-01"
    newer.payload["protocolSection"]["identificationModule"]["briefTitle"] = "NEWER VERSION"
    bad = [
        RawStudy(LEGACY_XML, "test:malformed.xml", "<clinical_study><id_info>"),
        RawStudy(API_V2_JSON, "test:truncated", None, error="truncated gzip stream after 2 records"),
        RawStudy(API_V2_JSON, "test:not-a-study", {"hello": "world"}),
    ]
    store = Store(tmp_path)
    # the newer copy comes first: newest wins whatever the order
    summary = ingest([newer, *good, *bad], store)
    assert summary.studies_read == 7
    assert summary.duplicates_dropped == 1
    assert summary.trials == 3
    assert summary.quarantined == 3
    assert summary.reconciles
    trials = store.read_table("trials").to_pylist()
    titles = {t["nct_id"]: t["brief_title"] for t in trials}
    assert titles[good[0].payload["protocolSection"]["identificationModule"]["nctId"]] == "NEWER VERSION"
    quarantine = [q for q in store.read_table("quarantine").to_pylist() if q["level"] == "record"]
    assert {q["source_ref"] for q in quarantine} == {"test:malformed.xml", "test:truncated", "test:not-a-study"}
    assert all(q["reason"] for q in quarantine)
    # duplicates leave no orphan or doubled child rows
    outcomes = store.read_table("outcome_measures")
    keys = list(zip(outcomes.column("nct_id").to_pylist(), outcomes.column("outcome_index").to_pylist()))
    assert len(keys) == len(set(keys))


def test_failed_ingest_keeps_previous_tables(tmp_path):
    store = Store(tmp_path)
    ingest(_sample_v2(2), store)
    before = store.read_table("trials").num_rows

    def exploding():
        yield from _sample_v2(1)
        raise OSError("disk on fire")

    with pytest.raises(OSError):
        ingest(exploding(), store)
    assert store.read_table("trials").num_rows == before
    assert not list(store.path("tables").glob(".staging-*"))


def test_source_path_that_does_not_exist_is_named(tmp_path):
    missing = tmp_path / "nowhere.tar.gz"
    with pytest.raises(FileNotFoundError, match="nowhere.tar.gz"):
        describe_source(str(missing))


def test_archive_source_and_gz_jsonl_round_trip(tmp_path):
    path = tmp_path / "studies.jsonl.gz"
    with gzip.open(path, "wt") as f:
        for raw in _sample_v2(4):
            f.write(json.dumps(raw.payload) + "\n")
    summary = ingest_source(str(path), Store(tmp_path / "home"))
    assert summary.trials == 4 and summary.quarantined == 0 and summary.reconciles


def test_a_record_whose_rows_do_not_fit_the_schema_is_quarantined_not_fatal(tmp_path, monkeypatch):
    from deepimagine_core.ctgov import parse

    good = _sample_v2(3)
    bad_id = good[1].payload["protocolSection"]["identificationModule"]["nctId"]
    real_parse = parse.parse_study

    def parse_with_overflow(raw):
        parsed = real_parse(raw)
        if parsed.nct_id == bad_id:  # a value no int64 column can hold, as a parser bug might produce
            parsed.rows["trials"][0]["enrollment"] = 2**70
        return parsed

    monkeypatch.setattr(parse, "parse_study", parse_with_overflow)
    store = Store(tmp_path)
    summary = ingest(good, store)
    assert summary.trials == 2 and summary.quarantined == 1 and summary.reconciles
    assert bad_id not in store.read_table("trials").column("nct_id").to_pylist()
    assert bad_id not in store.read_table("outcome_measures").column("nct_id").to_pylist()  # none of its rows
    (row,) = [q for q in store.read_table("quarantine").to_pylist() if q["level"] == "record"]
    assert row["nct_id"] == bad_id and "trials row does not fit the schema" in row["reason"]
    assert row["source_ref"] == good[1].source_ref
