"""Benchmark: retrieval index + approximate pairs at growing sizes (real records replicated under new ids).

    python -m deepimagine_core.pairs.benchmark --store /path/to/store --sizes 3000,30000,100000

Reads ``trials``, ``interventions`` and ``arm_groups`` from the store, replicates them to each size (copy r of
NCT01234567 becomes NCT01234567-r<r>), and runs profiles → index → approximate pairs, each size in its own process
so the peak resident memory is that size's. Prints one JSON line per size: wall and CPU seconds per stage, peak RSS,
pair counts. Replicated copies are identical, so at large sizes a trial's nearest neighbours are its own copies, which
differ in no factor: pair counts there measure nothing; time and memory are what this reports.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc

from deepimagine_core.store import Store

TABLES = ("trials", "interventions", "arm_groups")


def replicate(tables: dict[str, pa.Table], size: int) -> dict[str, pa.Table]:
    """``size`` trials: the originals, then copies with ids suffixed ``-r<copy>`` (child tables follow)."""
    base = tables["trials"]
    out = {name: [] for name in TABLES}
    copy, made = 0, 0
    while made < size:
        take = min(base.num_rows, size - made)
        trials = base.slice(0, take)
        keep = trials.column("nct_id")
        for name in TABLES:
            t = trials if name == "trials" else tables[name].filter(pc.is_in(tables[name].column("nct_id"), keep))
            if copy:
                ids = pc.binary_join_element_wise(t.column("nct_id"), pa.scalar(f"r{copy}"), "-")
                t = t.set_column(t.schema.get_field_index("nct_id"), "nct_id", ids)
            out[name].append(t)
        made += take
        copy += 1
    return {name: pa.concat_tables(parts) for name, parts in out.items()}


def run_size(store_root: str, size: int) -> dict:
    from deepimagine_core.pairs.approximate import build_approximate_pairs, build_trial_index, trial_profiles

    store = Store(store_root)
    tables = replicate({n: store.read_table(n) for n in TABLES}, size)
    result: dict = {"trials": tables["trials"].num_rows}
    wall0, cpu0 = time.perf_counter(), time.process_time()

    def timed(name, fn):
        w, c = time.perf_counter(), time.process_time()
        value = fn()
        result[f"{name}_wall_s"] = round(time.perf_counter() - w, 2)
        result[f"{name}_cpu_s"] = round(time.process_time() - c, 2)
        return value

    profiles = timed("profiles", lambda: trial_profiles(tables))
    index = timed("index", lambda: build_trial_index(profiles))
    _, stats = timed("pairs", lambda: build_approximate_pairs(profiles, index))
    result["total_wall_s"] = round(time.perf_counter() - wall0, 2)
    result["total_cpu_s"] = round(time.process_time() - cpu0, 2)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["pairs"] = {f: stats.get(f, 0) for f in ("intervention", "population", "geography", "design")}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="store root holding trials/interventions/arm_groups tables")
    parser.add_argument("--sizes", default="3000,30000,100000")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one size in this process
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_size(args.store, args.one)), flush=True)
        return 0
    for size in (int(s) for s in args.sizes.split(",")):
        proc = subprocess.run([sys.executable, "-m", "deepimagine_core.pairs.benchmark", "--store", args.store,
                               "--one", str(size)], capture_output=True, text=True)
        if proc.returncode != 0:
            print(json.dumps({"trials": size, "error": proc.stderr.strip().splitlines()[-1:]}), flush=True)
            continue
        print(proc.stdout.strip(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
