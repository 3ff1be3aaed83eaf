"""The main job: the whole graph on the configured defaults."""
