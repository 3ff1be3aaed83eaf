"""The whole-corpus evaluation on the embedded 250-study sample: questions built once and reused, benchmark trials
kept out, selection then scoring, and a stored summary naming the reference with its figures."""

import json
from pathlib import Path

import pytest

from deepimagine_core.ctgov.archives import SAMPLE_DIR
from deepimagine_core.evaluation.corpus import build_corpus, corpus_questions
from deepimagine_core.evaluation.ct_open import load_benchmarks
from deepimagine_core.evaluation.corpus_eval import CorpusSettings, evaluate_corpus
from deepimagine_core.evaluation.corpus_summary import write_summary
from deepimagine_core.evaluation.selection import Candidate
from deepimagine_core.store import Store
from tests.core.test_eval_ct_open import make_record, three_way_record, write_jsonl

ARCHIVE = SAMPLE_DIR / "legacy_xml_sample.tar.gz"


def test_corpus_is_built_once_split_in_time_and_keeps_benchmark_trials_out(tmp_path):
    store = Store(tmp_path / "corpus")
    logs: list[str] = []
    first = build_corpus([ARCHIVE], store, log=logs.append)
    train, test = corpus_questions(store)
    assert first["trials"] == 250 and first["questions"] == len(train) + len(test) > 0
    assert max(q.extra["results_first_posted"] or "" for q in train) <= first["cutoff"]
    assert build_corpus([ARCHIVE], store, log=logs.append) == first and "reusing" in logs[-1]
    head = build_corpus([ARCHIVE], Store(tmp_path / "head"), comparative="head_to_head", log=logs.append)
    assert head["key"]["comparative"] == "head_to_head" and first["key"]["comparative"] == "all"
    assert 0 < head["questions"] < first["questions"]  # the 3-way questions of placebo comparisons are left out
    switched = build_corpus([ARCHIVE], store, comparative="head_to_head", log=logs.append)  # same archives
    assert any("reusing the 250 trials ingested from the same archives" in m for m in logs[-2:]), logs[-2:]
    same = ("trials", "questions", "key")
    assert {k: switched[k] for k in same} == {k: head[k] for k in same}
    assert store.read_table("historical_questions").equals(Store(tmp_path / "head").read_table("historical_questions"))
    assert build_corpus([ARCHIVE], store, log=logs.append)["questions"] == first["questions"]  # and back again
    posted_only = build_corpus([ARCHIVE], store, computed="none", log=logs.append)  # reuses the trials too
    assert posted_only["key"]["computed"] == "none" and first["key"]["computed"] == "safety"
    assert 0 < posted_only["questions"] < first["questions"]  # the computed safety comparisons are left out
    assert "computed" not in set(store.read_table("historical_questions").column("significance_source").to_pylist())
    with pytest.raises(ValueError, match="comparative must be one of all, head_to_head"):
        build_corpus([ARCHIVE], Store(tmp_path / "bad"), comparative="placebo", log=logs.append)
    with pytest.raises(ValueError, match="computed must be one of safety, none"):
        build_corpus([ARCHIVE], Store(tmp_path / "bad"), computed="all", log=logs.append)
    assert not Store(tmp_path / "bad").has_table("trials")  # refused before anything was ingested

    held_out = train[0].nct_id
    again = build_corpus([ARCHIVE], Store(tmp_path / "other"), exclude_nct_ids={held_out}, log=logs.append)
    train2, test2 = corpus_questions(Store(tmp_path / "other"))
    assert held_out not in {q.nct_id for q in train2 + test2} and again["key"]["excluded"] == 1


def test_a_store_built_by_other_code_is_rebuilt_not_reused(tmp_path, monkeypatch):
    """Label rules changed: the questions are built again on the same trial tables; parsers changed: a new ingest."""
    from deepimagine_core.evaluation import corpus

    store, logs = Store(tmp_path / "corpus"), []
    first = build_corpus([ARCHIVE], store, log=logs.append)
    assert first["key"]["questions_code"] == corpus.code_digest(*corpus.QUESTIONS_CODE)
    real = corpus.code_digest
    monkeypatch.setattr(corpus, "code_digest", lambda *p: "new rules" if p == corpus.QUESTIONS_CODE else real(*p))
    second = build_corpus([ARCHIVE], store, log=logs.append)
    assert "by the same parsers; building the questions again" in logs[-2] and second["key"]["questions_code"] == \
        "new rules" and second["questions"] == first["questions"]
    monkeypatch.setattr(corpus, "code_digest", lambda *p: "new parsers")
    build_corpus([ARCHIVE], store, log=logs.append)
    assert "ingested 250 trials" in logs[-2], logs[-2:]


def test_code_digest_follows_the_sources(tmp_path):
    from deepimagine_core.evaluation.corpus import code_digest

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("A = 1\n")
    (tmp_path / "pkg" / "data.txt").write_text("not code")
    (tmp_path / "b.py").write_text("B = 2\n")
    before = code_digest("pkg", "b.py", root=tmp_path)
    (tmp_path / "pkg" / "data.txt").write_text("still not code")
    assert code_digest("pkg", "b.py", root=tmp_path) == before
    (tmp_path / "pkg" / "a.py").write_text("A = 2\n")
    assert code_digest("pkg", "b.py", root=tmp_path) != before != code_digest("pkg", root=tmp_path)


def test_evaluate_corpus_selects_scores_and_writes_a_summary(tmp_path):
    bench = tmp_path / "ct_open" / "toy.jsonl"
    bench.parent.mkdir()
    write_jsonl(bench, [make_record(f"NCT9000000{i}") for i in range(4)] + [three_way_record("NCT90000009")])
    settings = CorpusSettings(
        ctgov_dir=tmp_path, ct_open=str(bench.parent), work_dir=tmp_path / "work", out_dir=tmp_path / "out",
        reports_dir=tmp_path / "work" / "reports", archives=[ARCHIVE], n_bootstrap=20, n_jobs=1,
        candidates=(Candidate("logreg pooled", "logreg", {"min_df": 2}),
                    Candidate("logreg per-category", "logreg", {"min_df": 2, "per_category": True})),
        adapt_methods=("median",), baselines=("majority",))
    outcome = evaluate_corpus(settings, log=lambda _: None)
    selection = outcome["selection"]
    assert [r["candidate"] for r in selection["stage1"]] == ["logreg pooled", "logreg per-category"]
    assert len(selection["stage2"]) == 1 and selection["reference"] in {r["candidate"] for r in
                                                                        selection["stage1"] + selection["stage2"]}
    assert set(outcome["results"].runs) == {"historical_test", "toy"}
    ref = outcome["reference_label"]
    assert {ref, "majority"} <= set(outcome["results"].runs["toy"])
    path = write_summary(outcome, settings.out_dir, settings.reports_dir,
                         {"date": "today", "commit": "abc1234", "command": "test", "machine": "m", "load": "0 / 0"})
    text = path.read_text()
    assert "## Reference predictor" in text and "## Selection" in text and "| toy |" in text
    payload = json.loads(Path(settings.out_dir / "summary.json").read_text())
    assert 0 <= payload["benchmarks"]["toy"][ref]["weighted_accuracy"] <= 1
    # the covariate shift of each benchmark against all historical questions (designs only)
    assert list(outcome["covariates"]) == ["historical_test", "toy"] and "## Covariate shift" in text
    toy_n = payload["covariates"]["toy"]["categories"]["all"]["target_n"]
    assert toy_n == sum(len(qs) for qs in load_benchmarks(str(bench.parent)).values())
