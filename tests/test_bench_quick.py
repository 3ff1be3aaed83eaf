"""`python -m bench --quick` runs every part on small inputs and writes results (no timing assertions: CI machines
are shared, so a time proves nothing; the figures themselves live in BENCHMARKS.md)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_bench_writes_every_part(tmp_path):
    env = {**os.environ, "DEEPIMAGINE_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path / "out")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["quick"] is True
    for part in ("P1", "P2", "P3", "P4", "P5"):
        assert "error" not in results[part], (part, results[part])
        assert results[part]["load_avg"]["before"], part
    assert results["P1"]["ratio_to_floor"] > 0
    xml = results["P1"]["legacy_xml"]
    assert xml["rounds"] == 2 and len(xml["round_ratios"]) == 2 and all(r > 0 for r in xml["round_ratios"])
    assert min(xml["round_ratios"]) <= xml["ratio_to_floor"] <= max(xml["round_ratios"])
    assert results["P1"]["legacy_xml"]["studies"] == results["P1"]["legacy_xml"]["trials"] + \
        results["P1"]["legacy_xml"]["quarantined"]
    assert [s["trials"] for s in results["P2"]["sizes"]] == [300, 1000]
    assert results["P2"]["growth"][0]["cpu_exponent"] is not None
    assert results["P3"]["success"] and results["P3"]["job"] == "bench_quick"
    assert results["P4"]["speedup"] > 0 and results["P5"]["tokens_per_second"] > 0
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert all(f"| {part} |" in markdown for part in ("P1", "P2", "P3", "P4", "P5"))


def test_a_full_run_without_the_shared_snapshot_stops_with_a_clear_error(tmp_path, capsys):
    """It used to fall back to the 250-study embedded sample without saying so; now it names the folder it looked in."""
    from bench.__main__ import _inputs, main

    with pytest.raises(SystemExit) as stop:
        main(["--only", "P1", "--ctgov", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "no shared ClinicalTrials.gov snapshot" in err and "nowhere" in err and "--ctgov" in err
    assert not (tmp_path / "out" / "results.json").exists()
    snapshot = tmp_path / "ctgov"
    (snapshot / "legacy_xml").mkdir(parents=True)
    (snapshot / "legacy_xml" / "ctgov_legacy_xml_sample.tar.gz").write_bytes(b"")
    xml, js, rest = _inputs(False, snapshot)
    assert (xml.parent, js, rest.name) == (snapshot / "legacy_xml", snapshot / "v2_json" / "studies.jsonl.gz",
                                           "ctgov_legacy_xml_rest.tar.gz")
    assert _inputs(True, snapshot)[0].name == "legacy_xml_sample.tar.gz" and _inputs(True, snapshot)[2] is None
