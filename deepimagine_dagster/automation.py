"""Declarative automation: what brings itself up to date after a refresh of the trial tables.

The trial tables are refreshed by job `refresh_trials` (by hand or the weekly schedule). Everything computed from them
on a CPU is `eager`: it is requested once when one of its upstream assets has a new materialisation (or when it is
missing), after its upstream assets in the same tick, never while one of them is still running — so one refresh
rebuilds each dependent asset once, and what does not depend on the trial tables (CT Open files, the predictor
snapshots) is not rebuilt. The predictor snapshots are built with the first questions and otherwise only by hand: a
snapshot's training cutoff must stay put for the questions after it to stay unseen. `ct_open_benchmark` (the CT Open
files the user configures) feeds only the GPU evaluation report and is built by job `evaluate`.

GPU assets (traces, training, the LLM evaluation report) never start by themselves unless the user turns that on
($DEEPIMAGINE_AUTOMATE_GPU=1, read in resources.py). The sensor that evaluates the conditions is part of the
Definitions (UI: Automation → default_automation_condition_sensor); $DEEPIMAGINE_AUTOMATION=off makes it start
stopped.
"""

from __future__ import annotations

import warnings

import dagster as dg

SENSOR_NAME = "default_automation_condition_sensor"
#: CPU assets computed from the trial tables: kept up to date.
EAGER = (
    "trial_splits", "historical_questions", "question_skips", "natural_pairs", "retrieval_index", "approximate_pairs",
    "pair_datasets", "prospective_questions", "benchmark_history",
)
#: Built with the first questions, then only by hand.
ON_MISSING = ("predictor_snapshots",)
#: Tagged `deepimagine/gpu`: automated only when the user turns it on.
GPU = ("reasoning_traces", "sft_operators", "rl_operators", "grpo_policy", "evaluation_report")


def condition_for(key: dg.AssetKey, automate_gpu: bool) -> dg.AutomationCondition | None:
    name = key.path[-1]
    if name in ON_MISSING:  # eager, but only while missing (on_missing alone never fires for an asset missing at
        # the sensor's first tick: "newly missing" needs a tick where it was present)
        return (dg.AutomationCondition.eager() & dg.AutomationCondition.missing()).with_label("missing, on update")
    if name in EAGER:
        # GPU assets that are inputs of a CPU asset (published adapters) are optional for it unless automated
        ignored = () if automate_gpu else GPU
        return dg.AutomationCondition.eager().ignore(dg.AssetSelection.assets(*ignored)) if ignored \
            else dg.AutomationCondition.eager()
    if name in GPU and automate_gpu:
        return dg.AutomationCondition.eager()
    return None


def with_automation(defs: dg.Definitions, *, automate_gpu: bool = False, running: bool = True) -> dg.Definitions:
    """`defs` with each asset's automation condition set (EAGER, ON_MISSING, GPU above) and the sensor added."""

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        condition = condition_for(spec.key, automate_gpu)
        return spec.replace_attributes(automation_condition=condition) if condition is not None else spec

    sensor = dg.AutomationConditionSensorDefinition(
        SENSOR_NAME,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
        minimum_interval_seconds=30,
        description="Brings the CPU assets downstream of the trial tables up to date after each refresh "
        "(GPU assets only with $DEEPIMAGINE_AUTOMATE_GPU=1); see deepimagine_dagster/automation.py.",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # map_resolved_asset_specs is marked preview in 1.13
        mapped = defs.map_resolved_asset_specs(func=apply)
    return dg.Definitions.merge(mapped, dg.Definitions(sensors=[sensor]))
