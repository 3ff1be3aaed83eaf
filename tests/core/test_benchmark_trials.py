"""Benchmark registrations for the pathway: fetched by NCT id in batches, registration only (a result section is never
read), and what cannot be fetched is named with the reason."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from deepimagine_core.ctgov.api import ApiSettings, Page
from deepimagine_core.predict import benchmark_trials
from deepimagine_core.predict.benchmark_trials import fetch_trial_rows

SAMPLE = Path(__file__).parents[2] / "deepimagine_core" / "ctgov" / "sample" / "v2_json_studies.jsonl.gz"


class Untouchable(dict):
    """A result section that fails the test if anything reads it."""

    def __getitem__(self, key):
        raise AssertionError("the result section was read")

    get = items = values = keys = __iter__ = lambda self, *a: (_ for _ in ()).throw(AssertionError("read"))


class FakeClient:
    def __init__(self, studies):
        self.studies, self.queries = studies, []

    def fetch_page(self, query, token=None):
        self.queries.append(query.params()["filter.ids"])
        ids = set(query.nct_ids)
        found = [s for s in self.studies if s["protocolSection"]["identificationModule"]["nctId"] in ids]
        return Page(found, None)

    def close(self):
        pass


def sample_studies(n: int) -> list[dict]:
    with gzip.open(SAMPLE, "rt") as fh:
        studies = [json.loads(next(fh)) for _ in range(n)]
    for s in studies:
        s["resultsSection"] = Untouchable(s["resultsSection"])
    return studies


def test_rows_from_registrations_only(monkeypatch):
    studies = sample_studies(3)
    ids = [s["protocolSection"]["identificationModule"]["nctId"] for s in studies]
    monkeypatch.setattr(benchmark_trials, "IDS_PER_REQUEST", 2)
    client = FakeClient(studies)
    rows, missing = fetch_trial_rows([ids[0].lower(), *ids[1:], "NCT99999999"], ApiSettings(), client)
    assert sorted(rows) == sorted(ids) and missing == {"NCT99999999": "no study with this NCT id in the API"}
    assert len(client.queries) == 2  # batches of IDS_PER_REQUEST ids
    row = rows[ids[0]]
    assert row["countries"] and row["conditions"] and row["nct_id"] == ids[0]
    assert set(row) >= {"sex", "minimum_age", "eligibility_criteria", "phases", "allocation", "masking"}


def test_the_pathway_reads_the_fetched_context():
    from deepimagine_core.llm.factors import configuration_of
    from deepimagine_core.questions import Question

    [study] = sample_studies(1)
    nct = study["protocolSection"]["identificationModule"]["nctId"]
    rows, _ = fetch_trial_rows([nct], ApiSettings(), FakeClient([study]))
    q = Question(nct_id=nct, endpoint_key="outcome:0", question_index=0, brief_title="t", endpoint={"measure": "m"},
                 arms=[], meta_label="no_arm", options=["met", "not met"])
    assert configuration_of(q)["geography"] is None
    config = configuration_of(q, rows[nct])
    assert config["geography"] and config["population"] and config["design"]


def test_the_evaluate_option_needs_the_api_source_and_the_pathway_reads_the_table(tmp_path, monkeypatch):
    import dagster as dg
    import pyarrow as pa

    from deepimagine_core.llm.factors import load_trials
    from deepimagine_dagster.defs.evaluation import assets
    from deepimagine_dagster.resources import StoreResource, TrialSourceResource

    store_res = StoreResource(home=str(tmp_path))
    off = assets.benchmark_registrations(dg.build_asset_context(), assets.BenchmarkRegistrationsConfig(), store_res,
                                         TrialSourceResource(source="sample"))
    assert off.metadata["fetched"] == 0
    with pytest.raises(dg.Failure, match="DEEPIMAGINE_TRIALS_SOURCE=api"):
        assets.benchmark_registrations(dg.build_asset_context(), assets.BenchmarkRegistrationsConfig(fetch=True),
                                       store_res, TrialSourceResource(source="sample"))
    [study] = sample_studies(1)
    nct = study["protocolSection"]["identificationModule"]["nctId"]
    store = store_res.get()
    store.write_table("ct_open_questions", pa.table({"nct_id": [nct, "NCT00000001"], "role": ["benchmark"] * 2}))
    store.write_table("trials", pa.table({"nct_id": ["NCT00000001"], "countries": [["France"]]}))
    monkeypatch.setattr(benchmark_trials, "fetch_trial_rows",
                        lambda ids, api, client=None, log=None: fetch_trial_rows(ids, api, FakeClient([study]), log))
    monkeypatch.setattr(assets, "benchmark_trial_rows", benchmark_trials.benchmark_trial_rows)
    done = assets.benchmark_registrations(dg.build_asset_context(), assets.BenchmarkRegistrationsConfig(fetch=True),
                                          store_res, TrialSourceResource(source="api"))
    assert done.metadata["fetched"] == 1  # NCT00000001 is in the trials table already: not fetched
    trials = load_trials(store)
    assert set(trials) == {nct, "NCT00000001"} and trials[nct]["countries"]
