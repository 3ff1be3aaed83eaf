"""Ingest: every record read ends in trials, quarantine or the counted duplicates; tables match their schemas."""

import gzip
import json

import pyarrow.dataset as ds
import pytest

from deepimagine_core.ctgov import archives
from deepimagine_core.ctgov.ingest import describe_source, ingest, ingest_source
from deepimagine_core.ctgov.records import API_V2_JSON, LEGACY_XML, RawStudy, SourceError
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

    def parse_with_overflow(raw, buffers=None):
        parsed = real_parse(raw, buffers)
        if parsed.nct_id == bad_id:  # a value no int64 column can hold, as a parser bug might produce
            trials = parsed.buffers.tables["trials"]
            trials.lists[trials.names.index("enrollment")][-1] = 2**70
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


def _table_bytes(store: Store) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.path("tables").iterdir()) if p.is_file()}


def test_a_source_with_no_studies_publishes_nothing(tmp_path):
    store = Store(tmp_path / "home")
    ingest(_sample_v2(2), store)
    before = _table_bytes(store)
    with pytest.raises(SourceError, match=r"^trial source empty-source yielded no studies \(no NCT"):
        ingest([], store, source="empty-source")
    unreadable = RawStudy(API_V2_JSON, "x.zip", None, error="not a readable zip archive: bad magic", stopped=True)
    with pytest.raises(SourceError, match=r"yielded no studies \(1 unreadable record\(s\), first: x.zip: not a"):
        ingest([unreadable], store, source="x.zip", allow_partial=True)  # allow_partial does not allow nothing
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="empty yielded no studies"):
        ingest_source(str(tmp_path / "empty"), store)
    assert _table_bytes(store) == before
    assert not list(store.path("tables").glob(".staging-*"))


def test_a_stream_that_stopped_early_fails_unless_partial_reads_are_allowed(tmp_path):
    store = Store(tmp_path / "home")
    good = _sample_v2(3)
    ingest(good, store)
    before = _table_bytes(store)
    stop = RawStudy(API_V2_JSON, "cut.json", None, error="malformed or truncated JSON\nat character 9", stopped=True)
    with pytest.raises(SourceError) as failure:
        ingest([*good[:2], stop], store, source="cut.json")
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith("trial source cut.json stopped early at cut.json: malformed or truncated JSON at char")
    assert "(2 studies read before it stopped)" in message and "allow_partial" in message
    assert _table_bytes(store) == before

    summary = ingest([*good[:2], stop], store, source="cut.json", allow_partial=True)
    assert summary.trials == 2 and summary.quarantined == 1 and summary.reconciles
    assert summary.stopped_early == ["cut.json: malformed or truncated JSON\nat character 9 (2 studies read before it "
                                     "stopped)"]
    assert store.read_table("trials").num_rows == 2
    (row,) = store.read_table("quarantine").to_pylist()
    assert row["stage"] == "read" and row["source_ref"] == "cut.json"


def test_a_truncated_archive_source_fails_and_names_where_it_stopped(tmp_path):
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(archives.SAMPLE_DIR / "legacy_xml_sample.tar.gz") as src, \
            tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        members = [m for m in src.getmembers() if m.isfile() and m.name.endswith(".xml")][:10]
        for member in members:
            tar.addfile(member, src.extractfile(member))
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    store = Store(tmp_path / "home")
    with pytest.raises(SourceError, match=rf"^trial source {path} stopped early at {path}: archive truncated"):
        ingest_source(str(path), store)
    assert not store.has_table("trials")
    summary = ingest_source(str(path), store, allow_partial=True)
    assert 0 < summary.trials < 10 and summary.studies_read == summary.trials + 1
