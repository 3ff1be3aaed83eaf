"""`python -m bench [--quick] [--out DIR] [--only P1,P2]`: run the benchmark suite and write results.json + results.md.

--quick uses small inputs (the embedded sample, small sizes) so CI proves the suite runs; it asserts no timing.
The full run uses the shared ClinicalTrials.gov snapshot beside the repository when present.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from bench import common


def _parts(quick: bool) -> dict:
    from bench import p1_ingest, p2_retrieval, p3_pipeline, p4_generation, p5_training

    emb_xml = common.EMBEDDED / "legacy_xml_sample.tar.gz"
    emb_json = common.EMBEDDED / "v2_json_studies.jsonl.gz"
    if quick or not common.LEGACY_SAMPLE.exists():
        xml, js, rest = emb_xml, emb_json, None
    else:
        xml, js, rest = common.LEGACY_SAMPLE, common.V2_JSON, common.LEGACY_REST
    sizes = (300, 1000) if quick else (3_000, 30_000, 100_000)
    return {
        "P1": lambda: p1_ingest.run(str(xml), str(js), growth_path=str(rest) if rest and rest.exists() else None),
        "P2": lambda: p2_retrieval.run(str(xml), sizes),
        "P3": lambda: p3_pipeline.run(quick=quick),
        "P4": lambda: p4_generation.run(quick=quick),
        "P5": lambda: p5_training.run(quick=quick),
    }


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def to_markdown(results: dict) -> str:
    lines = [f"# Benchmark results ({'quick' if results['quick'] else 'full'})", "",
             f"Machine: {results['machine']}", "", "| part | key figures |", "|---|---|"]
    for part in ("P1", "P2", "P3", "P4", "P5"):
        value = results.get(part, {})
        flat = {k: v for k, v in value.items() if not isinstance(v, (dict, list))}
        lines.append(f"| {part} | " + ", ".join(f"{k}={v}" for k, v in flat.items()) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (CI): proves the suite runs")
    parser.add_argument("--out", default="bench-results", help="folder for results.json and results.md")
    parser.add_argument("--only", default="", help="comma-separated parts, e.g. P1,P2")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = _parts(args.quick)
    wanted = [p.strip() for p in args.only.split(",") if p.strip()] or list(parts)
    results = {"quick": args.quick, "machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    failed = False
    for name in ("P1", "P2", "P3", "P4", "P5"):
        if name not in wanted:
            continue
        print(f"[bench] {name} ...", flush=True)
        start = time.perf_counter()
        try:
            results[name] = parts[name]()
        except Exception as err:  # keep going; the part is reported as failed, never silently dropped
            failed = True
            results[name] = {"error": f"{type(err).__name__}: {err}"}
        results[name]["wall_seconds"] = round(time.perf_counter() - start, 2)
        print(f"[bench] {name}: {json.dumps(results[name])[:800]}", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "results.md").write_text(to_markdown(results))
    print(f"[bench] wrote {out / 'results.json'} and {out / 'results.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
