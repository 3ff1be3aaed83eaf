"""The code location: everything under `defs/`, plus the shared resources. Loaded by workspace.yaml and the CLI:

    dagster job execute -m deepimagine_dagster.definitions -j refresh_trials

Runs are readable by default: jobs log INFO and above on the console (`logs.py`), library progress bars and known
library warnings stay off it (`deepimagine_core.quiet`), and the main job ends with `run_summary`.
"""

import warnings

import dagster as dg

from deepimagine_core.quiet import quiet_third_party
from deepimagine_dagster import defs as defs_package
from deepimagine_dagster.automation import with_automation
from deepimagine_dagster.resources import automation_from_env, default_resources


def base_definitions() -> dg.Definitions:
    """Every domain's definitions and the shared resources, without the automation policy."""
    quiet_third_party()  # before any heavy import: library progress bars off, known library warnings filtered
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # the package loader is marked preview in dagster 1.13
        domains = dg.load_definitions_from_package_module(defs_package)
    # CPU jobs run their steps in one process: a step is seconds of work, and a process per step (the multiprocess
    # default) would spend more time importing than working. GPU jobs set their own executor (executors.py).
    return dg.Definitions.merge(
        domains, dg.Definitions(resources=default_resources(), executor=dg.in_process_executor)
    )


def build_definitions() -> dg.Definitions:
    """The code location: `base_definitions()` with the automation conditions and their sensor (automation.py)."""
    return with_automation(base_definitions(), **automation_from_env())


defs = build_definitions()
