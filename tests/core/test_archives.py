"""Archive readers on every container kind, built here from the embedded sample's real records, and on bad input."""

from __future__ import annotations

import codecs
import gzip
import io
import json
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from deepimagine_core.ctgov.archives import SAMPLE_DIR, iter_embedded_sample, iter_source
from deepimagine_core.ctgov.parse import parse_study
from deepimagine_core.ctgov.records import API_V2_JSON, LEGACY_XML, RawStudy, RecordError

N_JSON, N_XML = 12, 10


@pytest.fixture(scope="module")
def json_studies() -> list[dict]:
    with gzip.open(SAMPLE_DIR / "v2_json_studies.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(N_JSON), fh, strict=False)]


@pytest.fixture(scope="module")
def xml_files() -> dict[str, bytes]:
    """file name -> bytes of the first N_XML legacy XML studies."""
    out = {}
    with tarfile.open(SAMPLE_DIR / "legacy_xml_sample.tar.gz") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".xml"):
                out[Path(member.name).name] = tar.extractfile(member).read()
            if len(out) == N_XML:
                break
    return out


def nct(study: dict) -> str:
    return study["protocolSection"]["identificationModule"]["nctId"]


def ok(records: list[RawStudy]) -> list[RawStudy]:
    return [r for r in records if r.error is None]


def errors(records: list[RawStudy]) -> list[RawStudy]:
    return [r for r in records if r.error is not None]


def check_json(records: list[RawStudy], studies: list[dict]) -> None:
    assert not errors(records), [r.error for r in errors(records)]
    assert [r.payload for r in records] == studies
    assert [r.nct_id for r in records] == [nct(s) for s in studies]
    assert all(r.source_format == API_V2_JSON and r.version and len(r.version) == 10 for r in records)


def check_xml(records: list[RawStudy], files: dict[str, bytes]) -> None:
    assert not errors(records), [r.error for r in errors(records)]
    # the document's bytes as read (a UTF-8 byte order mark dropped): lxml parses them without a decode/encode
    assert {r.nct_id: r.payload for r in records} == {n[:-4]: b.removeprefix(codecs.BOM_UTF8) for n, b in files.items()}
    assert all(r.source_format == LEGACY_XML and r.version and r.version[:2] in ("19", "20") for r in records)


# ---------------------------------------------------------------------------------------------------- container kinds
def test_folder_of_xml_and_json_recursive(tmp_path, json_studies, xml_files):
    root = tmp_path / "dump"
    for i, (name, data) in enumerate(xml_files.items()):
        sub = root / f"NCT000{i % 3}xxxx"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / name).write_bytes(data)
    (root / "json").mkdir()
    for study in json_studies:
        (root / "json" / f"{nct(study)}.json").write_text(json.dumps(study))
    (root / "README.txt").write_text("not a record")
    (root / ".NCT00000000.xml").write_text("hidden editor file")
    records = list(iter_source(root))
    check_xml([r for r in records if r.source_format == LEGACY_XML], xml_files)
    check_json([r for r in records if r.source_format == API_V2_JSON], sorted(json_studies, key=nct))
    xml_ref = next(r.source_ref for r in records if r.source_format == LEGACY_XML)
    assert xml_ref.startswith(f"{root}!NCT000") and xml_ref.endswith(".xml")


@pytest.mark.parametrize("suffix,mode", [(".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz")])
def test_tar_of_xml(tmp_path, xml_files, suffix, mode):
    path = tmp_path / f"studies{suffix}"
    with tarfile.open(path, mode) as tar:
        for name, data in xml_files.items():
            info = tarfile.TarInfo(f"search_result/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    records = list(iter_source(path))
    check_xml(records, xml_files)
    assert records[0].source_ref == f"{path}!search_result/{next(iter(xml_files))}"


def test_tar_gz_of_json_members(tmp_path, json_studies):
    path = tmp_path / "studies.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for study in json_studies:
            data = json.dumps(study).encode()
            info = tarfile.TarInfo(f"{nct(study)}.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    check_json(list(iter_source(path)), json_studies)


def test_zip_one_json_per_study(tmp_path, json_studies):
    """ClinicalTrials.gov's bulk download: one JSON file per study."""
    path = tmp_path / "ctg-studies.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for study in json_studies:
            zf.writestr(f"{nct(study)}.json", json.dumps(study))
        zf.writestr("__MACOSX/._x.json", "junk")
    records = list(iter_source(path))
    check_json(records, json_studies)
    assert records[0].source_ref == f"{path}!{nct(json_studies[0])}.json"


def test_zip_of_one_json_array_and_of_xml(tmp_path, json_studies, xml_files):
    array_zip, xml_zip = tmp_path / "ctg-studies.json.zip", tmp_path / "xml.zip"
    with zipfile.ZipFile(array_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ctg-studies.json", json.dumps(json_studies, indent=2))
    with zipfile.ZipFile(xml_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in xml_files.items():
            zf.writestr(name, data)
    records = list(iter_source(array_zip))
    check_json(records, json_studies)
    assert records[2].source_ref == f"{array_zip}!ctg-studies.json:item 2"
    check_xml(list(iter_source(xml_zip)), xml_files)


@pytest.mark.parametrize("name", ["studies.json", "studies.json.gz"])
def test_json_array_file(tmp_path, json_studies, name):
    path = tmp_path / name
    data = json.dumps(json_studies, ensure_ascii=False).encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    records = list(iter_source(path))
    check_json(records, json_studies)
    assert records[-1].source_ref == f"{path}:item {N_JSON - 1}"


def test_single_study_json_and_single_xml(tmp_path, json_studies, xml_files):
    study_path = tmp_path / "one.json"
    study_path.write_text(json.dumps(json_studies[0]))
    check_json(list(iter_source(study_path)), json_studies[:1])
    name, data = next(iter(xml_files.items()))
    (tmp_path / name).write_bytes(data)
    records = list(iter_source(tmp_path / name))
    check_xml(records, {name: data})
    assert records[0].source_ref == str(tmp_path / name)


@pytest.mark.parametrize("name", ["studies.jsonl", "studies.jsonl.gz", "studies.ndjson"])
def test_json_lines(tmp_path, json_studies, name):
    path = tmp_path / name
    data = "".join(json.dumps(s) + "\n" for s in json_studies).encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    records = list(iter_source(path))
    check_json(records, json_studies)
    assert records[3].source_ref == f"{path}:line 4"


def test_embedded_sample():
    records = list(iter_embedded_sample())
    assert len(records) == 98 + 250
    assert not errors(records)
    assert sum(r.source_format == API_V2_JSON for r in records) == 98
    for fmt, count in ((API_V2_JSON, 98), (LEGACY_XML, 250)):  # two trials are in both formats
        assert len({r.nct_id for r in records if r.source_format == fmt and r.nct_id}) == count
    assert records[0].source_ref == "sample:v2_json_studies.jsonl.gz:line 1"
    assert records[-1].source_ref.startswith("sample:legacy_xml_sample.tar.gz!legacy_xml_sample/NCT")


# -------------------------------------------------------------------------------------------------------- bad input
def test_truncated_gz_ends_with_one_error_record(tmp_path, json_studies):
    whole = gzip.compress("".join(json.dumps(s) + "\n" for s in json_studies).encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    records = list(iter_source(path))
    good, bad = ok(records), errors(records)
    assert 0 < len(good) < N_JSON
    assert [r.payload for r in good] == json_studies[: len(good)]
    assert len(bad) == 1 and records[-1] is bad[0]
    assert "truncated" in bad[0].error and f"after line {len(good)}" in bad[0].error
    assert bad[0].stopped  # records were lost: the run fails unless partial reads are allowed


def test_truncated_tar_gz_ends_with_one_error_record(tmp_path, xml_files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in xml_files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 2 // 3])
    records = list(iter_source(path))
    assert 0 < len(ok(records)) < N_XML
    assert len(errors(records)) == 1 and records[-1].error and "truncated or corrupt" in records[-1].error
    assert records[-1].stopped


def test_malformed_and_non_study_lines_are_error_records(tmp_path, json_studies):
    lines = [json.dumps(s) for s in json_studies[:4]]
    lines[1] = lines[1][:-40]  # cut mid-object
    lines.insert(3, "42")
    lines.insert(4, '{"not": "a study"}')
    lines.insert(5, "")  # blank lines are not records
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    records = list(iter_source(path))
    assert len(records) == 6
    assert [r.nct_id for r in ok(records)] == [nct(json_studies[i]) for i in (0, 2, 3)]
    bad = errors(records)
    assert [r.source_ref for r in bad] == [f"{path}:line 2", f"{path}:line 4", f"{path}:line 5"]
    assert "malformed JSON" in bad[0].error and "not a ClinicalTrials.gov API v2 study" in bad[1].error
    assert all(r.payload is None for r in bad)
    assert not any(r.stopped for r in records)  # reading went on: nothing was lost


def test_json_lines_cut_in_the_last_line_stopped(tmp_path, json_studies):
    data = "".join(json.dumps(s) + "\n" for s in json_studies[:5]).encode()
    path = tmp_path / "cut.jsonl"
    path.write_bytes(data[:-300])
    records = list(iter_source(path))
    assert [r.payload for r in ok(records)] == json_studies[:4]
    (bad,) = errors(records)
    assert bad.stopped and "stream cut in the middle of line 5" in bad.error
    back = RawStudy.from_json(bad.to_json())  # the raw layer keeps the flag
    assert back.stopped and back.error == bad.error
    assert "stopped" not in json.loads(ok(records)[0].to_json())  # and writes nothing for a good record


def test_corrupt_zip_member_is_an_error_record_and_reading_goes_on(tmp_path, json_studies):
    path = tmp_path / "bulk.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for study in json_studies[:3]:
            zf.writestr(f"{nct(study)}.json", json.dumps(study))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        second = zf.infolist()[1]
    start = second.header_offset + 30 + len(second.filename) + 40  # inside the second member's compressed data
    data[start : start + 16] = b"\x00" * 16
    path.write_bytes(bytes(data))
    records = list(iter_source(path))
    assert [r.nct_id for r in ok(records)] == [nct(json_studies[0]), nct(json_studies[2])]
    (bad,) = errors(records)
    assert bad.source_ref == f"{path}!{nct(json_studies[1])}.json" and bad.nct_id == nct(json_studies[1])
    assert not bad.stopped


def test_cut_json_array_keeps_the_whole_items_and_says_where_it_stopped(tmp_path, json_studies):
    data = json.dumps(json_studies).encode()
    path = tmp_path / "cut.json"
    path.write_bytes(data[: len(data) - 1000])
    records = list(iter_source(path))
    assert [r.payload for r in ok(records)] == json_studies[: N_JSON - 1]
    assert len(errors(records)) == 1 and "stopped at character" in records[-1].error
    assert records[-1].stopped


def test_an_unreadable_zip_stopped_and_a_bad_single_study_file_did_not(tmp_path, json_studies):
    (tmp_path / "cut.zip").write_bytes(b"PK\x03\x04 not really a zip")
    (records,) = [list(iter_source(tmp_path / "cut.zip"))]
    assert len(records) == 1 and records[0].stopped and "not a readable zip" in records[0].error
    one = json.dumps(json_studies[0])
    (tmp_path / "one.json").write_text(one[: len(one) // 2])  # one study, cut: one bad record, nothing else lost
    (bad,) = list(iter_source(tmp_path / "one.json"))
    assert bad.error and not bad.stopped


def test_broken_files_in_a_folder(tmp_path):
    (tmp_path / "NCT01234567.xml").write_bytes(b"\xff\xfe<clinical_study/>")
    (tmp_path / "empty.json").write_text("")
    records = list(iter_source(tmp_path))
    assert len(records) == 2
    assert {r.nct_id for r in records} == {None, "NCT01234567"}
    [empty] = errors(records)
    assert empty.payload is None and "empty" in empty.error
    # XML is handed over as the bytes read; bytes that are not UTF-8 make the record malformed when it is parsed
    [xml] = ok(records)
    with pytest.raises(RecordError, match="malformed XML"):
        parse_study(xml)


def test_empty_archives_yield_nothing(tmp_path):
    with tarfile.open(tmp_path / "empty.tar.gz", "w:gz"):
        pass
    with zipfile.ZipFile(tmp_path / "empty.zip", "w"):
        pass
    (tmp_path / "zero.zip").write_bytes(b"")
    (tmp_path / "empty.jsonl.gz").write_bytes(gzip.compress(b""))
    (tmp_path / "empty.json").write_text("[ ]")
    (tmp_path / "folder").mkdir()
    for name in ("empty.tar.gz", "empty.zip", "zero.zip", "empty.jsonl.gz", "empty.json", "folder"):
        assert list(iter_source(tmp_path / name)) == [], name


def test_missing_path_and_unknown_kind(tmp_path):
    missing = tmp_path / "nowhere" / "studies.zip"
    with pytest.raises(FileNotFoundError, match="nowhere/studies.zip"):
        iter_source(missing)
    odd = tmp_path / "studies.csv"
    odd.write_text("nct_id\n")
    with pytest.raises(ValueError, match=r"\.tar\.gz.*\.zip.*\.jsonl"):
        iter_source(odd)


def test_json_array_memory_is_flat_in_the_number_of_studies(tmp_path, json_studies):
    """Peak memory while streaming a 5x longer array stays about the same (items are decoded one at a time)."""

    def peak(copies: int) -> int:
        path = tmp_path / f"array{copies}.json"
        with open(path, "w") as fh:
            fh.write("[")
            for i in range(copies):
                fh.write(("," if i else "") + json.dumps(json_studies[i % N_JSON]))
            fh.write("]")
        tracemalloc.start()
        count = sum(1 for _ in iter_source(path))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert count == copies
        return top

    small, large = peak(20), peak(100)
    assert large < 1.5 * small, (small, large)
