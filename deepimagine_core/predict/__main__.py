"""`python -m deepimagine_core.predict NCT01234567 | registration.json | draft.yaml`: print the predictions as a
compact table and write the report under the store's reports/ask/<nct_id>/.

The store is `--home` (default ~/.deepimagine; pass `--home "$DEEPIMAGINE_HOME"` to use the Dagster jobs' store); it
must hold `historical_questions` (job `build_pairs`) and, for an NCT id, the trial tables (job `refresh_trials`)
unless `--api` fetches the registration from ClinicalTrials.gov. Exit status 2 on input that is not a usable trial
(the message names the field).
"""

from __future__ import annotations

import argparse
import sys

from deepimagine_core.llm.backends import BackendSettings
from deepimagine_core.predict.design import DesignError
from deepimagine_core.predict.report import ask, compact_table
from deepimagine_core.predict.run import LLM_MODES, PredictSettings, reference_predictor
from deepimagine_core.store import DEFAULT_HOME, Store


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m deepimagine_core.predict", description=__doc__.split("\n\n")[0])
    p.add_argument("trial", help="an NCT id, a ClinicalTrials.gov API v2 JSON file, or a YAML draft (.yaml/.yml)")
    p.add_argument("--home", default=DEFAULT_HOME, help=f"the artefact store (default {DEFAULT_HOME})")
    p.add_argument("--api", action="store_true", help="fetch an NCT id from the ClinicalTrials.gov API v2")
    p.add_argument("--api-url", default="https://clinicaltrials.gov/api/v2", help="API v2 base URL (with --api)")
    p.add_argument("--secondary", action="store_true", help="also ask about secondary outcomes")
    p.add_argument("--predictor", action="append", default=[],
                   help=f"predictor name (repeatable; default: the reference, {reference_predictor()[0]})")
    p.add_argument("--llm", choices=LLM_MODES, default="auto",
                   help="auto: add deepimagine_sft when its operators are published; off; deepimagine: also the "
                        "pathway on the configured base model")
    p.add_argument("--llm-backend", default=BackendSettings.kind, help="transformers | vllm | auto (LLM predictors)")
    p.add_argument("--llm-model", default=BackendSettings.model, help="hub id, local folder, or tiny (LLM predictors)")
    p.add_argument("--llm-device", default=BackendSettings.device, help="cpu, cuda ... (LLM predictors)")
    p.add_argument("--neighbours", type=int, default=5, help="nearest historical trials shown per question")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quiet or not sys.stderr.isatty():  # library progress bars are noise in a log or a pipe
        from deepimagine_core.quiet import quiet_third_party

        quiet_third_party()
    store = Store(args.home)
    api = None
    if args.api:
        from deepimagine_core.ctgov.ingest import ApiSettings

        api = ApiSettings(base_url=args.api_url)
    log = (lambda _msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    settings = PredictSettings(secondary=args.secondary, neighbours=args.neighbours, predictors=args.predictor,
                               llm=args.llm)
    backend = None
    if args.llm != "off":  # built lazily: the model loads only if an LLM predictor runs
        from deepimagine_core.llm.backend_factory import shared_backend

        backend = shared_backend(store, kind=args.llm_backend, model=args.llm_model, device=args.llm_device)
    try:
        result, files = ask(args.trial, store, settings, api=api, backend=backend, log=log)
    except (DesignError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{result.design.nct_id}: {result.design.title}")
    print(compact_table(result))
    print(f"\nreport: {files.markdown}\n        {files.html}\n        {files.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
