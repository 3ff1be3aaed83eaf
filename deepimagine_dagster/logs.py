"""Readable runs: every job's default run config logs INFO and above on the console.

Dagster's default console logger prints DEBUG, i.e. every engine event of every step (about a third of the main job's
console). The UI's run view already hides DEBUG by default; this makes `dagster job execute` match it. To see the
engine events again, give the run config `loggers: {console: {config: {log_level: DEBUG}}}` (CLI `-c`, or the
Launchpad, which shows this default).

A job whose assets have required config (e.g. `predict_trial`) cannot take a default run config (Dagster checks it
whole when the job is built): it keeps Dagster's default.
"""

CONSOLE_LOG_LEVEL = "INFO"
INFO_LOGS = {"loggers": {"console": {"config": {"log_level": CONSOLE_LOG_LEVEL}}}}
