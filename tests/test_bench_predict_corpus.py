"""`python -m bench.predict_corpus` inputs: the legacy archives of a snapshot folder, the sample alone, extra trial
sources after them in a store of their own, and a missing extra source refused before any work."""

from pathlib import Path

import pytest

from bench.predict_corpus import corpus_inputs, main


def _snapshot(tmp_path: Path) -> Path:
    legacy = tmp_path / "ctgov" / "legacy_xml"
    legacy.mkdir(parents=True)
    for name in ("ctgov_legacy_xml_rest.tar.gz", "ctgov_legacy_xml_sample.tar.gz"):
        (legacy / name).write_bytes(b"")
    return tmp_path / "ctgov"


def test_corpus_inputs_add_extra_sources_in_a_store_of_their_own(tmp_path):
    ctgov, work = _snapshot(tmp_path), tmp_path / "work"
    archives, store = corpus_inputs(ctgov, work)
    assert [a.name for a in archives] == ["ctgov_legacy_xml_rest.tar.gz", "ctgov_legacy_xml_sample.tar.gz"]
    assert store == work / "full"
    newer = tmp_path / "ctg-studies.json.zip"
    newer.write_bytes(b"")
    archives, store = corpus_inputs(ctgov, work, sample=True, extra=[newer])
    assert [a.name for a in archives] == ["ctgov_legacy_xml_sample.tar.gz", "ctg-studies.json.zip"]
    assert store == work / "sample+extra"
    with pytest.raises(FileNotFoundError, match="nowhere.zip"):
        corpus_inputs(ctgov, work, extra=[tmp_path / "nowhere.zip"])


def test_a_missing_extra_source_stops_before_any_work(tmp_path, capsys):
    ctgov = _snapshot(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["--ctgov", str(ctgov), "--ct-open", "", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"),
              "--extra-source", str(tmp_path / "nowhere.zip")])
    assert stop.value.code == 2 and "--extra-source not found" in capsys.readouterr().err
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()
