"""`python -m bench.time_gap` on the embedded sample laid out like the shared snapshot: it writes the table of fits
per gap and direction, the trend lines, the newer-records table and the plot (figures on 15 trials say nothing; the
stored run is docs/results/time_gap)."""

import json
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "deepimagine_core" / "ctgov" / "sample"


@pytest.mark.slow
def test_time_gap_bench_writes_its_summary_from_a_snapshot_folder(tmp_path, capsys):
    from bench.time_gap import main

    ctgov = tmp_path / "ctgov"
    (ctgov / "legacy_xml").mkdir(parents=True)
    (ctgov / "legacy_xml" / "legacy_xml_sample.tar.gz").symlink_to(SAMPLE / "legacy_xml_sample.tar.gz")
    out = tmp_path / "out"
    assert main(["--ctgov", str(ctgov), "--ct-open", "", "--work", str(tmp_path / "work"), "--out", str(out),
                 "--n-trials", "15", "--seeds", "1", "--forward-gaps", "0,1,9", "--backward-gaps", "0",
                 "--backward-before", "2011-01-01", "--recent-source", str(SAMPLE / "v2_json_studies.jsonl.gz")]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["rows"]
    assert [(r["direction"], r["gap"]) for r in rows] == [("forward", 0), ("forward", 1), ("forward", 9),
                                                          ("backward", 0)]
    assert all(r["n_trials"] == 15 and 0 <= r["trial_balanced"] <= 1 for r in rows if "skipped" not in r)
    assert "skipped" in rows[2]  # nine years before 2015: no trial of the sample
    assert summary["trend"]["forward"]["n"] == 2 and summary["trend"]["forward"]["slope"] is not None
    periods = summary["periods"]
    assert len(periods) == 3 and sum(p["n_questions"] for p in periods) > 0  # the JSON studies posted after 2016
    markdown = (out / "summary.md").read_text()
    assert "| forward | 9 |" in markdown and "Newer records (v2_json_studies.jsonl.gz;" in markdown
    assert (out / "time_gap.png").stat().st_size
    assert "time gap forward 0.0y" in capsys.readouterr().out


def test_a_missing_recent_source_stops_before_any_work(tmp_path, capsys):
    from bench.time_gap import main

    with pytest.raises(SystemExit) as stop:
        main(["--ctgov", str(tmp_path), "--recent-source", str(tmp_path / "nowhere.zip"), "--out", str(tmp_path / "o")])
    assert stop.value.code == 2 and "--recent-source not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
