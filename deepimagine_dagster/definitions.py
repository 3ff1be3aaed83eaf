"""The code location: everything under `defs/`, plus the shared resources. Loaded by workspace.yaml and the CLI:

    dagster job execute -m deepimagine_dagster.definitions -j refresh_trials
"""

import warnings

import dagster as dg

from deepimagine_dagster import defs as defs_package
from deepimagine_dagster.resources import default_resources

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)  # the package loader is marked preview in dagster 1.13
    _domains = dg.load_definitions_from_package_module(defs_package)

defs = dg.Definitions.merge(_domains, dg.Definitions(resources=default_resources()))
