"""P2 retrieval + approximate pairs at growing sizes: seconds, peak RSS and the growth exponent between sizes.

The trial tables are built once from a real archive (not timed); each size then replicates the real records under
NEW NCT ids (``NCT9`` + 7 digits, never a real id; the child tables follow their trial) and, in its own spawned
process so the peak RSS is that size's, times the pairs code path: `trial_profiles` → `build_trial_index`
(`TextIndex`) → `build_approximate_pairs` for all four factors.

Only the tables the retrieval reads (``trials``, ``interventions``, ``arm_groups``) are replicated. Copies are
identical, so at large sizes a trial's nearest neighbours are its own copies, which differ in no factor: pair counts
there say nothing about quality; time and memory are what this measures.

Growth exponent between sizes n1 < n2: log(t2/t1) / log(n2/n1) (1 = linear; N log N gives about 1.1 here). It is
computed on wall time and on process CPU time: on a shared machine the CPU exponent is the steadier figure.
"""

from __future__ import annotations

import math
import os
import tempfile

from bench.common import Timer, in_fresh_process
from deepimagine_core.tables import ARM_GROUPS_TABLE, INTERVENTIONS_TABLE, TRIALS_TABLE

TABLES = (TRIALS_TABLE, INTERVENTIONS_TABLE, ARM_GROUPS_TABLE)
TARGET_SECONDS, TARGET_MB = 120.0, 4096.0


def new_ids(first: int, count: int):
    """``count`` fresh NCT-format ids starting at serial ``first`` (``NCT9`` + 7 digits: outside the real range)."""
    import pyarrow as pa

    if first + count > 10_000_000:
        raise ValueError(f"cannot make {first + count} replica ids: at most 10,000,000")
    return pa.array([f"NCT9{n:07d}" for n in range(first, first + count)], pa.string())


def replicate(tables: dict, size: int) -> dict:
    """``size`` trials: the real ones first, then whole copies (a last partial copy) under new ids."""
    import pyarrow as pa
    import pyarrow.compute as pc

    base = tables[TRIALS_TABLE]
    n = base.num_rows
    if n == 0:
        raise ValueError("no trials to replicate")
    base_ids = base.column("nct_id")
    out: dict[str, list] = {name: [] for name in TABLES}
    copy = made = 0
    while made < size:
        take = min(n, size - made)
        kept = base_ids.slice(0, take)
        for name in TABLES:
            table = base.slice(0, take) if name == TRIALS_TABLE else tables[name].filter(
                pc.is_in(tables[name].column("nct_id"), value_set=kept))
            if copy:
                ids = new_ids((copy - 1) * n, n).take(pc.index_in(table.column("nct_id"), value_set=base_ids))
                table = table.set_column(table.schema.get_field_index("nct_id"), "nct_id", ids)
            out[name].append(table)
        made += take
        copy += 1
    return {name: pa.concat_tables(parts) for name, parts in out.items()}


def build_tables(source: str, home: str) -> dict:
    """Ingest ``source`` into the store at ``home`` (setup, not timed as part of P2)."""
    from deepimagine_core.ctgov.ingest import ingest_source
    from deepimagine_core.store import Store

    summary = ingest_source(source, Store(home), progress=False)
    return {"studies": summary.studies_read, "trials": summary.trials}


def measure_size(home: str, size: int) -> dict:
    """Profiles, index and approximate pairs at ``size`` trials: wall and CPU seconds per stage, pair counts."""
    import sklearn.feature_extraction.text  # noqa: F401  (imported before the clock starts)

    from deepimagine_core.pairs.approximate import build_approximate_pairs, build_trial_index, trial_profiles
    from deepimagine_core.store import Store

    store = Store(home)
    tables = replicate({name: store.read_table(name) for name in TABLES}, size)
    result: dict = {"trials": tables[TRIALS_TABLE].num_rows}

    def timed(stage, fn):
        with Timer() as t:
            value = fn()
        result[f"{stage}_seconds"], result[f"{stage}_cpu_seconds"] = round(t.seconds, 2), round(t.cpu_seconds, 2)
        return value

    with Timer() as total:
        profiles = timed("profiles", lambda: trial_profiles(tables))
        index = timed("index", lambda: build_trial_index(profiles))
        _, stats = timed("pairs", lambda: build_approximate_pairs(profiles, index))
    result["seconds"], result["cpu_seconds"] = round(total.seconds, 2), round(total.cpu_seconds, 2)
    result["pairs"] = {f: stats.get(f, 0) for f in ("intervention", "population", "geography", "design")}
    result["load_avg_1min"] = round(os.getloadavg()[0], 2)
    return result


def growth_exponent(n1: int, t1: float, n2: int, t2: float) -> float | None:
    """log(t2/t1) / log(n2/n1); None when a time is zero."""
    if t1 <= 0 or t2 <= 0 or n2 == n1:
        return None
    return round(math.log(t2 / t1) / math.log(n2 / n1), 3)


def n_log_n_exponent(n1: int, n2: int) -> float:
    """The exponent N log N growth would show between n1 and n2 (for comparison)."""
    return round(math.log((n2 * math.log(n2)) / (n1 * math.log(n1))) / math.log(n2 / n1), 3)


def run(source: str, sizes: tuple[int, ...]) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-p2-") as home:
        built = in_fresh_process(build_tables, source, home)
        per_size = [in_fresh_process(measure_size, home, size) for size in sizes]
    growth = []
    for a, b in zip(per_size, per_size[1:]):
        n1, n2 = a["trials"], b["trials"]
        growth.append({"from": n1, "to": n2,
                       "wall_exponent": growth_exponent(n1, a["seconds"], n2, b["seconds"]),
                       "cpu_exponent": growth_exponent(n1, a["cpu_seconds"], n2, b["cpu_seconds"]),
                       "n_log_n_exponent": n_log_n_exponent(n1, n2)})
    largest = per_size[-1]
    return {
        "source": source,
        "source_trials": built["trials"],
        "sizes": per_size,
        "growth": growth,
        "largest_trials": largest["trials"],
        "largest_seconds": largest["seconds"],
        "largest_cpu_seconds": largest["cpu_seconds"],
        "largest_peak_rss_mb": largest["peak_rss_mb"],
        "max_cpu_exponent": max((g["cpu_exponent"] or 0.0) for g in growth) if growth else None,
        "target": f"100000 trials < {TARGET_SECONDS:.0f} s and < {TARGET_MB:.0f} MB; growth near N log N",
        "target_met": (largest["seconds"] < TARGET_SECONDS and largest["peak_rss_mb"] < TARGET_MB)
        if largest["trials"] >= 100_000 else None,  # the target is set at 100k; smaller (quick) runs are not judged
    }


def headline(r: dict) -> str:
    """One line for results.md (the per-size table is written by `size_table`)."""
    exps = ", ".join(f"{g['from']}→{g['to']}: CPU {g['cpu_exponent']} / wall {g['wall_exponent']} "
                     f"(N log N {g['n_log_n_exponent']})" for g in r["growth"])
    return (f"{r['largest_trials']} trials: {r['largest_seconds']} s wall, {r['largest_cpu_seconds']} s CPU, "
            f"{r['largest_peak_rss_mb']} MB; growth exponents {exps}")


def size_table(r: dict) -> list[str]:
    """Markdown rows, one per size."""
    rows = ["| trials | profiles s (CPU) | index s (CPU) | pairs s (CPU) | total s (CPU) | peak RSS MB | load 1 min |",
            "|---|---|---|---|---|---|---|"]
    for s in r["sizes"]:
        rows.append(f"| {s['trials']} | " + " | ".join(f"{s[f'{k}seconds']} ({s[f'{k}cpu_seconds']})"
                                                    for k in ("profiles_", "index_", "pairs_", ""))
                    + f" | {s['peak_rss_mb']} | {s['load_avg_1min']} |")
    return rows
