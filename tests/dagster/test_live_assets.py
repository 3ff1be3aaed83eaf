"""Live assets: the fine-tuned predictors' cutoffs come from what their adapters recorded."""

import datetime as dt

from deepimagine_core.store import Store
from deepimagine_core.training.checkpoints import ADAPTER, REQUIRED_ADAPTER_FILES
from deepimagine_core.training.cutoff import record_cutoff
from deepimagine_dagster.defs.live.assets import trained_contenders, trained_cutoffs
from deepimagine_dagster.resources import LLMBackendResource


def _publish(store: Store, name: str, cutoff: dt.date | None) -> None:
    folder = store.path("models", name, ADAPTER)
    folder.mkdir(parents=True)
    for f in REQUIRED_ADAPTER_FILES:
        (folder / f).write_text("{}")
    if cutoff:
        record_cutoff(folder, cutoff, 1)


def test_trained_cutoffs_take_the_latest_adapter_and_skip_unknown_ones(tmp_path):
    store = Store(tmp_path)
    assert trained_cutoffs(store) == {} and trained_contenders(store, LLMBackendResource(model="tiny"), 0) == {}
    _publish(store, "sft_arm", dt.date(2020, 1, 1))
    _publish(store, "sft_outcome", dt.date(2021, 6, 1))
    _publish(store, "grpo", None)  # trained before cutoffs were recorded: what it saw is unknown
    assert trained_cutoffs(store) == {"deepimagine_sft": dt.date(2021, 6, 1)}
