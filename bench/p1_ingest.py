"""P1 ingest: a study archive into every trial table, against the floor of reading and parsing the same files alone
(lxml for XML, json for API v2 JSON) in one process, each in its own fresh process of the same run.

Two figures per input:
- single process (``workers=1``): ``ratio_to_floor`` is the ratio of wall times (the issue's definition),
  ``cpu_ratio_to_floor`` the ratio of process CPU times, which a shared, loaded machine disturbs far less;
- the whole job with every core (``workers=0``, the default: one parse process per core): ``all_cores`` wall
  seconds, and the same ratio to the single-core floor.

The full run also ingests the whole shared legacy XML corpus (both archives, 14,543 studies, read one after the other
in one ingest) with every core (``corpus``: the work of a `refresh_trials` on it), and checks memory growth on the
11,543-study archive."""

from __future__ import annotations

import gzip
import json
import os
import tarfile
import tempfile
from statistics import median

from bench.common import Timer, in_fresh_process


def floor_xml(path: str) -> dict:
    from lxml import etree

    with Timer() as t:
        n = 0
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".xml"):
                    etree.fromstring(tar.extractfile(member).read())
                    n += 1
    return {"studies": n, "seconds": t.seconds, "cpu_seconds": t.cpu_seconds}


def floor_json(path: str) -> dict:
    with Timer() as t:
        n = 0
        with gzip.open(path, "rt") as f:
            for line in f:
                json.loads(line)
                n += 1
    return {"studies": n, "seconds": t.seconds, "cpu_seconds": t.cpu_seconds}


def ingest_path(path: str | list[str], workers: int = 1) -> dict:
    """`ingest_source` of `path` (or one ingest of every archive of a list, read one after the other) with
    `workers` parse processes (0 = one per core). CPU seconds count this process and its worker processes."""
    import itertools
    import resource

    import deepimagine_core.ctgov.parse  # noqa: F401  (imported before the clock starts, like lxml for the floor)
    from deepimagine_core.ctgov.archives import iter_source
    from deepimagine_core.ctgov.ingest import ingest, ingest_source
    from deepimagine_core.ctgov.parse_pool import ParseSettings
    from deepimagine_core.store import Store

    settings = ParseSettings(workers=workers)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as home, Timer() as t:
        if isinstance(path, str):
            summary = ingest_source(path, Store(home), progress=False, parse=settings)
        else:
            raws = itertools.chain.from_iterable(iter_source(p) for p in path)
            summary = ingest(raws, Store(home), source="+".join(path), progress=False, parse=settings)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    return {"studies": summary.studies_read, "trials": summary.trials, "quarantined": summary.quarantined,
            "seconds": t.seconds, "cpu_seconds": t.cpu_seconds + worker_cpu, "rows": summary.rows,
            "workers": settings.pool_size(), "worker_peak_rss_mb": round(after.ru_maxrss / 1024, 1)}


def ingest_all_cores(path: str | list[str]) -> dict:
    return ingest_path(path, workers=0)


def replicate_jsonl(src: str, dst: str, studies: int) -> int:
    """Write ``studies`` API v2 studies to ``dst`` (JSON Lines .gz): the real ones of ``src`` cycled, every copy after
    the first pass under a NEW NCT id (``NCT9`` + 7 digits, outside the real range) so none is a duplicate."""
    with gzip.open(src, "rt") as f:
        real = [json.loads(line) for line in f if line.strip()]
    with gzip.open(dst, "wt") as out:
        for n in range(studies):
            study = real[n % len(real)]
            ident = study["protocolSection"]["identificationModule"]
            original = ident["nctId"]
            if n >= len(real):
                ident["nctId"] = f"NCT9{n:07d}"
            out.write(json.dumps(study) + "\n")
            ident["nctId"] = original
    return studies


def _compare(path: str, floor, all_cores: bool = False, rounds: int = 1) -> dict:
    """Floor and ingest of `path`, each in a fresh process, `rounds` times, alternating which runs first. Ratios are
    the median of the rounds' own ratios (each round's floor and ingest ran side by side in time, so a load that
    comes and goes moves both); seconds are medians, peak RSS the largest."""
    pairs = []
    for i in range(rounds):
        order = (floor, ingest_path) if i % 2 == 0 else (ingest_path, floor)
        first, second = (_settled(in_fresh_process(f, path)) for f in order)
        pairs.append((first, second) if i % 2 == 0 else (second, first))
    base, full = pairs[0]
    floor_s, ingest_s = median(b["seconds"] for b, _ in pairs), median(f["seconds"] for _, f in pairs)
    out = {
        "input": path,
        "studies": full["studies"],
        "trials": full["trials"],
        "quarantined": full["quarantined"],
        "rounds": rounds,
        "floor_seconds": round(floor_s, 3),
        "ingest_seconds": round(ingest_s, 3),
        "floor_studies_per_s": round(base["studies"] / floor_s, 1),
        "studies_per_s": round(full["studies"] / ingest_s, 1),
        "ratio_to_floor": round(median(f["seconds"] / b["seconds"] for b, f in pairs), 2),
        "round_ratios": [round(f["seconds"] / b["seconds"], 2) for b, f in pairs],
        "floor_cpu_seconds": round(median(b["cpu_seconds"] for b, _ in pairs), 3),
        "ingest_cpu_seconds": round(median(f["cpu_seconds"] for _, f in pairs), 3),
        "cpu_ratio_to_floor": round(median(f["cpu_seconds"] / b["cpu_seconds"] for b, f in pairs), 2),
        "peak_rss_mb": max(f["peak_rss_mb"] for _, f in pairs),
        "floor_peak_rss_mb": max(b["peak_rss_mb"] for b, _ in pairs),
    }
    if all_cores:
        out["all_cores"] = _all_cores(path, out["floor_seconds"])
    return out


def _settled(result: dict) -> dict:
    """`result`, after the dirty pages the measured process left (an ingest writes its Parquet tables) are written
    out: the kernel's write-back would otherwise run during the next measurement and be charged to it."""
    os.sync()
    return result


def _all_cores(path: str | list[str], floor_seconds: float | None = None) -> dict:
    """The whole ingest job with one parse process per core."""
    many = in_fresh_process(ingest_all_cores, path)
    out = {"input": path, "workers": many["workers"], "studies": many["studies"], "trials": many["trials"],
           "seconds": round(many["seconds"], 3), "cpu_seconds": round(many["cpu_seconds"], 3),
           "studies_per_s": round(many["studies"] / many["seconds"], 1), "peak_rss_mb": many["peak_rss_mb"],
           "worker_peak_rss_mb": many["worker_peak_rss_mb"]}
    if floor_seconds:
        out["ratio_to_single_core_floor"] = round(many["seconds"] / floor_seconds, 2)
    return out


def run(xml_path: str, json_path: str | None, growth_path: str | None = None, json_studies: int = 3000,
        corpus_paths: list[str] | None = None, rounds: int = 1) -> dict:
    """Ingest vs floor for the XML archive, the real v2 JSON sample, and (when the JSON sample is smaller than
    ``json_studies``) that sample replicated to ``json_studies`` studies. The small real JSON sample is dominated by
    fixed costs (nine Parquet tables staged and published), so when the replicated input exists the headline
    ``ratio_to_floor`` (worst of the inputs) leaves the small one out (``in_headline``). ``rounds``: floor/ingest
    pairs per input (`_compare`); one pair's ratio moved by ±20% from round to round on this machine."""
    out = {"legacy_xml": _compare(str(xml_path), floor_xml, all_cores=True, rounds=rounds)}
    if json_path:
        out["api_v2_json"] = _compare(str(json_path), floor_json, rounds=rounds)
        if out["api_v2_json"]["studies"] < json_studies:
            with tempfile.TemporaryDirectory(prefix="bench-p1-") as tmp:
                replicated = replicate_jsonl(str(json_path), f"{tmp}/studies.jsonl.gz", json_studies)
                out["api_v2_json_replicated"] = _compare(f"{tmp}/studies.jsonl.gz", floor_json, rounds=rounds)
            out["api_v2_json_replicated"]["input"] = f"{json_path} replicated to {replicated} studies (new NCT ids)"
            out["api_v2_json"]["in_headline"] = False
    counted = [v for v in out.values() if v.get("in_headline", True)]
    worst = max(v["ratio_to_floor"] for v in counted)
    result = {"ratio_to_floor": worst, "cpu_ratio_to_floor": max(v["cpu_ratio_to_floor"] for v in counted),
              "target": "<= 2.0", "target_met": worst <= 2.0, **out}
    if growth_path:  # memory flat as input grows: peak RSS on a ~4x larger archive
        big = in_fresh_process(ingest_path, growth_path)
        result["growth"] = {"input": growth_path, "studies": big["studies"], "peak_rss_mb": big["peak_rss_mb"],
                            "seconds": round(big["seconds"], 2), "cpu_seconds": round(big["cpu_seconds"], 2),
                            "studies_per_s": round(big["studies"] / big["seconds"], 1),
                            "rss_ratio_vs_small": round(big["peak_rss_mb"] / out["legacy_xml"]["peak_rss_mb"], 2)}
    if corpus_paths:  # the whole shared corpus with every core: what `refresh_trials` does with it
        result["corpus"] = _all_cores(corpus_paths)
        result["corpus"]["target"] = "< 30 s wall"
        result["corpus"]["target_met"] = result["corpus"]["seconds"] < 30
    return result


def headline(r: dict) -> str:
    """One line for results.md."""
    parts = [f"{kind}: {v['studies']} studies, 1 process {v['studies_per_s']}/s, ratio {v['ratio_to_floor']} "
             f"(median of rounds {v['round_ratios']}; CPU {v['cpu_ratio_to_floor']}), {v['peak_rss_mb']} MB"
             + (f"; {v['all_cores']['workers']} workers {v['all_cores']['seconds']} s "
                f"({v['all_cores']['ratio_to_single_core_floor']}x the floor)" if "all_cores" in v else "")
             for kind, v in r.items() if isinstance(v, dict) and "ratio_to_floor" in v]
    if "growth" in r:
        g = r["growth"]
        parts.append(f"growth: {g['studies']} studies, {g['studies_per_s']}/s, {g['peak_rss_mb']} MB "
                     f"(RSS x{g['rss_ratio_vs_small']})")
    if "corpus" in r:
        c = r["corpus"]
        parts.append(f"whole corpus: {c['studies']} studies in {c['seconds']} s with {c['workers']} workers "
                     f"(CPU {c['cpu_seconds']} s)")
    return "; ".join(parts)
