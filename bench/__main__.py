"""`python -m bench [--quick] [--out DIR] [--only P1,P2]`: run the benchmark suite and write results.json + results.md.

`python -m bench --gpu [--out DIR]`: the GPU check instead (`bench/gpu.py`: vLLM generation and SFT/GRPO training on
Qwen3-0.6B and Qwen3-8B shapes with random weights); prints one JSON and writes it to DIR/gpu-results.json. Without
CUDA it reports that it was skipped, and why, and exits 0.

--quick uses small inputs (the embedded sample, small sizes) so CI proves the suite runs; it asserts no timing.
The full run uses the shared ClinicalTrials.gov snapshot (`--ctgov DIR`; default: `shared/data/ctgov` beside the
repository or beside its folder of worktrees) and stops with an error when it is not there.
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


def _inputs(quick: bool, ctgov: Path) -> tuple[Path, Path, Path | None]:
    """(legacy XML archive, v2 JSON file, second legacy XML archive or None): the embedded sample for --quick, else
    the shared snapshot under `ctgov`; a full run without it is an error (it used to fall back to the 250-study
    embedded sample without saying so)."""
    if quick:
        return common.EMBEDDED / "legacy_xml_sample.tar.gz", common.EMBEDDED / "v2_json_studies.jsonl.gz", None
    xml = ctgov / common.LEGACY_SAMPLE.relative_to(common.SHARED)
    if not xml.exists():
        raise FileNotFoundError(f"full run: no shared ClinicalTrials.gov snapshot at {ctgov} (looked for {xml}); "
                                "pass --ctgov DIR (the folder with legacy_xml/ and v2_json/), or --quick for the "
                                "embedded sample")
    return (xml, ctgov / common.V2_JSON.relative_to(common.SHARED),
            ctgov / common.LEGACY_REST.relative_to(common.SHARED))


def _parts(quick: bool, inputs: tuple[Path, Path, Path | None]) -> dict:
    """The parts to run, on `inputs` (`_inputs`)."""
    from bench import p1_ingest, p2_retrieval, p3_pipeline, p4_generation, p5_training

    xml, js, rest = inputs
    sizes = (300, 1000) if quick else (3_000, 30_000, 100_000)
    return {
        "P1": lambda: p1_ingest.run(str(xml), str(js), growth_path=str(rest) if rest and rest.exists() else None,
                                    json_studies=300 if quick else 3_000,
                                    corpus_paths=[str(xml), str(rest)] if rest and rest.exists() else None,
                                    rounds=2 if quick else 6),
        "P2": lambda: p2_retrieval.run(str(xml), sizes),
        "P3": lambda: p3_pipeline.run(quick=quick),
        "P4": lambda: p4_generation.run(quick=quick),
        "P5": lambda: p5_training.run(quick=quick),
    }


def _load() -> list[float]:
    """1, 5 and 15 minute load averages: the machine is shared, so every figure carries the load it ran under."""
    return [round(x, 2) for x in os.getloadavg()]


def code_version() -> dict:
    """The commit measured and how many tracked files differed from it (the tree is shared and changes often)."""
    return {"commit": common.git("rev-parse", "--short", "HEAD") or "unknown",
            "modified_tracked_files": len([ln for ln in common.git("status", "--porcelain", "--untracked-files=no")
                                           .splitlines() if ln.strip()])}


def _proc_field(path: str, key: str) -> str | None:
    try:
        with open(path) as fh:
            return next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith(key)), None)
    except OSError:
        return None


def machine() -> dict:
    mem = _proc_field("/proc/meminfo", "MemTotal")
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or platform.machine(),
        "memory_gb": round(int(mem.split()[0]) / 2**20, 1) if mem else None,
    }


def _module(part: str):
    import importlib

    names = {"P1": "p1_ingest", "P2": "p2_retrieval", "P3": "p3_pipeline", "P4": "p4_generation", "P5": "p5_training"}
    return importlib.import_module(f"bench.{names[part]}")


def to_markdown(results: dict) -> str:
    """A table with one line per part (headline, target, met, load average), then P2's per-size table."""
    lines = [f"# Benchmark results ({'quick' if results['quick'] else 'full'}), started {results['started']}", "",
             f"Machine: {results['machine']}", "", f"Code: {results.get('code')}", "",
             "| part | figures | target | met | load avg 1 min (before → after) | part s |", "|---|---|---|---|---|---|"]
    for part in ("P1", "P2", "P3", "P4", "P5"):
        r = results.get(part)
        if r is None:
            continue
        try:
            text = r["error"].splitlines()[-1] if "error" in r else _module(part).headline(r)
        except (KeyError, TypeError) as err:  # a result without the expected fields: show that, do not crash
            text = f"(incomplete result: {err!r})"
        met = {True: "yes", False: "**no**", None: "n/a"}[r.get("target_met")]
        load = r.get("load_avg", {})
        lines.append(f"| {part} | {text} | {r.get('target') or r.get('targets', '')} | {met} | "
                     f"{load.get('before', [None])[0]} → {load.get('after', [None])[0]} | {r.get('part_seconds')} |")
    if "sizes" in results.get("P2", {}):
        lines += ["", "P2 per size (seconds wall, CPU in brackets):", "", *_module("P2").size_table(results["P2"])]
    return "\n".join(lines) + "\n"


def _gpu(out: Path) -> int:
    from bench import gpu

    started, load_before = time.perf_counter(), _load()
    result = {"machine": machine(), "code": code_version(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
              **gpu.run()}
    result["part_seconds"] = round(time.perf_counter() - started, 2)
    result["load_avg"] = {"before": load_before, "after": _load()}
    text = json.dumps(result, indent=2, default=str)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu-results.json").write_text(text)
    failed = any("error" in part for shape in result["shapes"].values() for part in shape.values()
                 if isinstance(part, dict))
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (CI): proves the suite runs")
    parser.add_argument("--out", default="bench-results", help="folder for results.json and results.md")
    parser.add_argument("--only", default="", help="comma-separated parts, e.g. P1,P2")
    parser.add_argument("--gpu", action="store_true", help="the GPU check (bench/gpu.py) instead of the CPU suite")
    parser.add_argument("--ctgov", type=Path, default=common.SHARED,
                        help=f"the shared ClinicalTrials.gov snapshot for the full run (default: {common.SHARED})")
    args = parser.parse_args(argv)
    if args.gpu:
        return _gpu(Path(args.out))
    try:
        inputs = _inputs(args.quick, args.ctgov)
    except FileNotFoundError as err:
        parser.error(str(err))
    parts = _parts(args.quick, inputs)
    wanted = [p.strip().upper() for p in args.only.split(",") if p.strip()] or list(parts)
    unknown = sorted(set(wanted) - set(parts))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}: choose from {', '.join(parts)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"quick": args.quick, "machine": machine(), "code": code_version(),
               "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "inputs": [str(p) for p in inputs if p is not None]}
    failed = False
    for name in ("P1", "P2", "P3", "P4", "P5"):
        if name not in wanted:
            continue
        print(f"[bench] {name} ...", flush=True)
        start, load_before = time.perf_counter(), _load()
        try:
            results[name] = parts[name]()
        except Exception as err:  # keep going; the part is reported as failed, never silently dropped
            results[name] = {"error": f"{type(err).__name__}: {err}"}
        failed = failed or "error" in results[name]
        results[name]["part_seconds"] = round(time.perf_counter() - start, 2)
        results[name]["load_avg"] = {"before": load_before, "after": _load()}
        print(f"[bench] {name}: {json.dumps(results[name])[:800]}", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "results.md").write_text(to_markdown(results))
    print(f"[bench] wrote {out / 'results.json'} and {out / 'results.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
