"""Dagster definitions of DeepImagine. Thin: every asset body calls deepimagine_core."""
