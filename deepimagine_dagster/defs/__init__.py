"""One sub-package per domain (trials, pairs, evaluation, llm, training); each holds assets, checks, jobs, schedules."""
