"""P1 ingest: a study archive into every trial table, against the floor of reading and parsing the same files alone
(lxml for XML, json for API v2 JSON) in the same process."""

from __future__ import annotations

import gzip
import json
import tarfile
import tempfile

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
    return {"studies": n, "seconds": t.seconds}


def floor_json(path: str) -> dict:
    with Timer() as t:
        n = 0
        with gzip.open(path, "rt") as f:
            for line in f:
                json.loads(line)
                n += 1
    return {"studies": n, "seconds": t.seconds}


def ingest_path(path: str) -> dict:
    from deepimagine_core.ctgov.ingest import ingest_source
    from deepimagine_core.store import Store

    with tempfile.TemporaryDirectory() as home, Timer() as t:
        summary = ingest_source(path, Store(home))
    return {"studies": summary.studies_read, "trials": summary.trials, "quarantined": summary.quarantined,
            "seconds": t.seconds, "rows": summary.rows}


def run(xml_path: str, json_path: str | None, growth_path: str | None = None) -> dict:
    out = {}
    for kind, path, floor in (("legacy_xml", xml_path, floor_xml), ("api_v2_json", json_path, floor_json)):
        if not path:
            continue
        base = in_fresh_process(floor, str(path))
        full = in_fresh_process(ingest_path, str(path))
        out[kind] = {
            "input": str(path),
            "studies": full["studies"],
            "trials": full["trials"],
            "quarantined": full["quarantined"],
            "floor_seconds": round(base["seconds"], 3),
            "ingest_seconds": round(full["seconds"], 3),
            "floor_studies_per_s": round(base["studies"] / base["seconds"], 1),
            "studies_per_s": round(full["studies"] / full["seconds"], 1),
            "ratio_to_floor": round(full["seconds"] / base["seconds"], 2),
            "peak_rss_mb": full["peak_rss_mb"],
            "floor_peak_rss_mb": base["peak_rss_mb"],
        }
    worst = max(v["ratio_to_floor"] for v in out.values())
    result = {"ratio_to_floor": worst, "target": "<= 2.0", **out}
    if growth_path:  # memory flat as input grows: peak RSS on a ~4x larger archive
        big = in_fresh_process(ingest_path, growth_path)
        result["growth"] = {"input": growth_path, "studies": big["studies"], "peak_rss_mb": big["peak_rss_mb"],
                            "studies_per_s": round(big["studies"] / big["seconds"], 1),
                            "rss_ratio_vs_small": round(big["peak_rss_mb"] / out["legacy_xml"]["peak_rss_mb"], 2)}
    return result
