"""`workers` in the trial source config reaches the parse pool (0, the default, means one process per core)."""

from deepimagine_core.ctgov.parse_pool import ParseSettings, available_cores
from deepimagine_dagster.resources import TrialSourceResource


def test_workers_setting_reaches_the_parse_settings():
    assert TrialSourceResource().parse_settings().pool_size() == available_cores() >= 1
    assert TrialSourceResource(workers=3).parse_settings() == ParseSettings(workers=3)
    assert ParseSettings(workers=1).pool_size() == 1
