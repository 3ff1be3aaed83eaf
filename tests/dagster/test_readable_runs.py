"""Readable runs: jobs log INFO by default, known library warnings are filtered at their source, library progress
bars are off, and the main job ends with `run_summary`."""

import os
import warnings

import dagster as dg
import pyarrow as pa

from deepimagine_core.quiet import quiet_third_party
from deepimagine_dagster.defs.pipeline.assets import run_summary
from deepimagine_dagster.logs import INFO_LOGS
from deepimagine_dagster.resources import StoreResource


def test_jobs_log_info_by_default_and_keep_user_config():
    from deepimagine_dagster.definitions import defs

    for name in ("refresh_trials", "build_pairs", "generate_traces", "train", "evaluate", "deepimagine"):
        job = defs.resolve_job_def(name)
        assert job.run_config == INFO_LOGS, name
    main = defs.resolve_job_def("deepimagine")
    keys = main.asset_layer.executable_asset_keys
    upstream = dg.AssetSelection.assets("run_summary").upstream().resolve(defs.resolve_asset_graph())
    assert dg.AssetKey("run_summary") in keys and keys <= upstream  # the summary is the main job's last step
    # a user's partial run config is merged with the default, not refused
    config = {"ops": {"trial_splits": {"config": {"test_fraction": 0.2}}}}
    assert main.run_config_schema.config_type.fields  # the schema builds with the default
    from dagster._core.system_config.objects import ResolvedRunConfig

    resolved = ResolvedRunConfig.build(main, config)
    assert resolved.loggers["console"]["config"]["log_level"] == "INFO"


def test_known_library_warning_is_filtered_and_others_are_not(monkeypatch):
    for name in ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(name, raising=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_third_party()
        warnings.warn_explicit("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning,
                               "modeling_utils.py", 3303, module="transformers.modeling_utils")
        warnings.warn_explicit("`is_gradient_checkpointing` is deprecated", FutureWarning, "ours.py", 1,
                               module="deepimagine_core.training.run")  # same text from our code: still shown
        warnings.warn_explicit("something else", FutureWarning, "modeling_utils.py", 1,
                               module="transformers.modeling_utils")
    assert [str(w.message) for w in seen] == ["`is_gradient_checkpointing` is deprecated", "something else"]
    assert os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] == os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"


def test_run_summary_logs_and_shows_what_the_run_left(tmp_path):
    res = StoreResource(home=str(tmp_path))
    res.get().write_table("trials", pa.table({"nct_id": ["NCT1"]}))
    context = dg.build_asset_context()
    result = run_summary(context, res)
    assert result.metadata["tables"].value == {"trials": 1}
    assert "| trials | 1 |" in result.metadata["summary"].value and "report" not in result.metadata
