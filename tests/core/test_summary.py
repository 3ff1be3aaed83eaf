"""The closing summary of a run: tables and rows, adapters, the report's path and headline figures."""

import json

import pyarrow as pa

from deepimagine_core.store import Store
from deepimagine_core.summary import summarize_store


def scores(wa, n=40):
    return {"overall": {"weighted_accuracy": wa}, "intervals": {"weighted_accuracy": [wa - 0.1, wa + 0.1]},
            "n_questions": n}


def test_summary_lists_tables_adapters_report_and_headline(tmp_path):
    store = Store(tmp_path)
    store.write_table("trials", pa.table({"nct_id": ["NCT1", "NCT2"]}))
    store.write_table("approximate_pairs", pa.table({"pair_id": pa.array([], pa.string())}))
    reports = store.path("reports")
    reports.mkdir()
    (reports / "report.md").write_text("# report\n")
    runs = {"majority": scores(0.5), "logreg": scores(0.61), "random_forest": scores(0.58), "knn_history": scores(0.55),
            "ensemble": scores(0.6), "deepimagine": scores(0.47)}
    (reports / "evaluation.json").write_text(json.dumps({"historical_test": runs}))

    summary = summarize_store(store, {"sft_arm": tmp_path / "models" / "sft_arm" / "adapter"})
    assert summary.tables == {"approximate_pairs": 0, "trials": 2}
    assert list(summary.headline["historical_test"]) == ["logreg", "ensemble", "random_forest", "majority",
                                                         "deepimagine"]
    text = summary.text()
    assert "tables (2, rows): approximate_pairs 0, trials 2" in text
    assert f"adapters in {tmp_path / 'models'}/<name>/adapter: sft_arm" in text
    assert f"report: {reports / 'report.md'}" in text
    assert "historical_test (40 questions), weighted accuracy: logreg 0.610 [0.51, 0.71]" in text
    assert "empty tables: approximate_pairs" in text and len(text.splitlines()) <= 8
    assert "| trials | 2 |" in summary.markdown()


def test_summary_of_an_empty_store_says_so(tmp_path):
    text = summarize_store(Store(tmp_path)).text()
    assert "tables (0, rows): none" in text and "adapters: none published" in text and "report: not written" in text


def test_summary_says_why_parts_are_empty(tmp_path):
    parts = {f"approximate_pairs/f{i}": "no approximate pairs: fewer than 2 trials (1) to pair" for i in range(14)}
    summary = summarize_store(Store(tmp_path), empty_parts=parts)
    lines = summary.text().splitlines()
    assert "empty or skipped, and why:" in lines
    assert "  approximate_pairs/f0: no approximate pairs: fewer than 2 trials (1) to pair" in lines
    assert lines[-1] == "  (+2 more in the assets' metadata)"  # the console shows 12, the UI's markdown all 14
    assert summary.markdown().count("- `approximate_pairs/f") == 14
