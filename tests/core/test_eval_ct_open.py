"""CT Open loader: JSON Lines and pickles of records the tests write, the restricted unpickler, clear errors."""

import gzip
import json
import os
import pickle

import pytest

from deepimagine_core.evaluation.ct_open import (
    CTOpenError,
    UnsafePickleError,
    benchmark_name,
    benchmark_nct_ids,
    load_benchmarks,
    load_file,
    resolve_paths,
)

SUPERIORITY = [
    "The study arm Drug X has achieved statistically significant improvements over the study arm Placebo with "
    "respect to this specific endpoint.",
    "The study arm Drug X has not achieved statistically significant improvements over the study arm Placebo with "
    "respect to this specific endpoint, either because of no statistical effect or worse effect.",
]


def comparative(a: str, b: str) -> list[str]:
    return [
        f"Study Arm {b} is statistically significantly worse than Study Arm {a}.",
        f"Study Arm {a} is statistically significantly worse than Study Arm {b}.",
        f"No statistically significant difference between Study Arm {a} and Study Arm {b}.",
    ]


def arm(label: str, kind: str) -> dict:
    return {"label": label, "type": kind, "description": "", "interventionNames": [f"Drug: {label}"],
            "interventions": [{"type": "DRUG", "name": label, "description": "", "otherNames": []}]}


def make_record(nct: str = "NCT00000001", measure: str = "Change in HbA1c", **over) -> dict:
    """A CT Open-shaped record (one 2-way explicit question), written by the tests themselves."""
    endpoint = {"measure": measure, "description": "", "timeFrame": "12 weeks", "outcome_type": "primaryOutcomes"}
    rec = {
        "nct_id": nct,
        "endpoint_key": str(endpoint),
        "brief_title": "A toy trial",
        "endpoint": endpoint,
        "arms": [arm("Drug X", "EXPERIMENTAL"), arm("Placebo", "PLACEBO_COMPARATOR")],
        "meta_label": "single_arm",
        "list_of_tuples": [["Drug X", "MET", "Placebo"]],
        "no_arm_label": None,
        "distinguishable_arm": None,
        "listed_arms": None,
        "real_arm": None,
        "question_list_of_lists": [SUPERIORITY],
        "answer_list_of_lists": [SUPERIORITY[0]],
    }
    rec.update(over)
    return rec


def three_way_record(nct: str = "NCT00000002") -> dict:
    q1, q2 = comparative("Low dose", "Comparator"), comparative("High dose", "Comparator")
    return make_record(
        nct,
        "Time to relapse",
        arms=[arm("Low dose", "EXPERIMENTAL"), arm("High dose", "EXPERIMENTAL"), arm("Comparator", "ACTIVE_COMPARATOR")],
        meta_label="distinguishable_arm",
        question_list_of_lists=[q1, q2],
        answer_list_of_lists=[q1[2], q2[0]],
    )


def write_jsonl(path, records) -> None:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")


def test_jsonl_gz_flattens_records_to_questions(tmp_path):
    path = tmp_path / "winter_toy.jsonl.gz"
    write_jsonl(path, [make_record(reported_results={"evidence": "says the answer"}), three_way_record()])
    questions = load_file(path)
    assert [q.key[0] for q in questions] == ["NCT00000001", "NCT00000002", "NCT00000002"]
    first, low, high = questions
    assert first.answer == 0 and first.category == "2-way_explicit" and first.endpoint["measure"] == "Change in HbA1c"
    assert (low.answer, low.question_index, low.category) == (2, 0, "3-way_explicit")
    assert (high.answer, high.question_index) == (0, 1)
    assert first.extra["list_of_tuples"] == [["Drug X", "MET", "Placebo"]]
    assert "reported_results" not in first.extra  # evidence never kept
    assert first.endpoint_key == str(first.endpoint)
    assert benchmark_name(path) == "winter_toy"


def test_pickle_keyed_by_nct_and_endpoint_with_literal_endpoint(tmp_path):
    rec = make_record()
    key = (rec.pop("nct_id"), rec.pop("endpoint_key"))
    rec["endpoint"] = str(rec["endpoint"])  # the original stores the endpoint as a Python-literal string
    path = tmp_path / "Winter_Toy.pickle"
    path.write_bytes(pickle.dumps({key: rec}, protocol=4))
    (q,) = load_file(path)
    assert q.nct_id == "NCT00000001" and q.endpoint_key == key[1]
    assert q.endpoint == {"measure": "Change in HbA1c", "description": "", "timeFrame": "12 weeks",
                          "outcome_type": "primaryOutcomes"}
    assert q.answer == 0


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_pickle_list_of_records_with_sets_and_tuples(tmp_path, protocol):
    rec = make_record(distinguishable_arm={"Drug X"}, list_of_tuples=[("Drug X", "MET", "Placebo")])
    path = tmp_path / "toy.pkl"
    path.write_bytes(pickle.dumps([rec, three_way_record()], protocol=protocol))
    questions = load_file(path)
    assert len(questions) == 3
    assert questions[0].extra["distinguishable_arm"] == ["Drug X"]
    json.dumps(questions[0].extra)  # extra is plain JSON


class _Exploit:
    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_malicious_pickle_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps([_Exploit(str(marker))]))
    with pytest.raises(UnsafePickleError, match=r"(posix|os|nt)\.system"):
        load_file(path)
    assert not marker.exists()


def test_pickle_with_a_non_builtin_class_is_refused(tmp_path):
    from collections import OrderedDict

    path = tmp_path / "ordered.pickle"
    path.write_bytes(pickle.dumps(OrderedDict(a=1)))
    with pytest.raises(UnsafePickleError, match="collections.OrderedDict"):
        load_file(path)


def test_missing_field_names_the_record_and_line(tmp_path):
    bad = make_record("NCT00000009")
    del bad["answer_list_of_lists"]
    path = tmp_path / "bad.jsonl"
    write_jsonl(path, [make_record(), bad])
    with pytest.raises(CTOpenError, match=r"bad\.jsonl:2.*NCT00000009.*answer_list_of_lists"):
        load_file(path)


def test_answer_not_among_options_is_an_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    write_jsonl(path, [make_record(answer_list_of_lists=["Something else entirely."])])
    with pytest.raises(CTOpenError, match="not one of its options"):
        load_file(path)


def test_invalid_json_line_is_named(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(make_record()) + "\n{not json\n")
    with pytest.raises(CTOpenError, match=r"broken\.jsonl:2"):
        load_file(path)


def test_paths_from_file_list_and_folder(tmp_path):
    folder = tmp_path / "ct"
    folder.mkdir()
    a, b = folder / "a.jsonl", folder / "b.jsonl.gz"
    write_jsonl(a, [make_record("NCT00000001")])
    write_jsonl(b, [three_way_record("NCT00000002")])
    (folder / "notes.txt").write_text("ignored")
    assert resolve_paths(folder) == [a, b]
    assert resolve_paths(f"{a}, {b}") == [a, b]
    assert resolve_paths("") == [] and resolve_paths(None) == []
    assert benchmark_nct_ids(str(folder)) == {"NCT00000001", "NCT00000002"}
    assert {k: len(v) for k, v in load_benchmarks([a, b]).items()} == {"a": 1, "b": 2}
    with pytest.raises(CTOpenError, match="no such"):
        resolve_paths(tmp_path / "missing.jsonl")
    with pytest.raises(CTOpenError, match="not a CT Open file"):
        resolve_paths(folder / "notes.txt")
