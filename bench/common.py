"""Helpers: run a measurement in a fresh process (so peak RSS is its own), locate data."""

from __future__ import annotations

import multiprocessing as mp
import resource
import subprocess
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# beside the checkout (/work/main -> /work/shared), or beside the folder of worktrees (/work/wt/x -> /work/shared)
SHARED = next((p / "shared" / "data" / "ctgov" for p in (ROOT.parent, ROOT.parents[1])
               if (p / "shared" / "data" / "ctgov").exists()), ROOT.parent / "shared" / "data" / "ctgov")
LEGACY_SAMPLE = SHARED / "legacy_xml" / "ctgov_legacy_xml_sample.tar.gz"
LEGACY_REST = SHARED / "legacy_xml" / "ctgov_legacy_xml_rest.tar.gz"
V2_JSON = SHARED / "v2_json" / "studies.jsonl.gz"
EMBEDDED = ROOT / "deepimagine_core" / "ctgov" / "sample"


def add_corpus_arguments(parser, out: str, ct_open_help: str) -> None:
    """The whole-corpus benches' shared inputs: --ctgov, --ct-open, --work (the store they share), --out."""
    parser.add_argument("--ctgov", type=Path, default=Path("../shared/data/ctgov"))
    parser.add_argument("--ct-open", default="../shared/data/ct_open", help=ct_open_help)
    parser.add_argument("--work", type=Path, default=Path("/tmp/deepimagine-corpus"))
    parser.add_argument("--out", type=Path, default=Path(out))


def check_exist(paths, flag: str) -> list[Path]:
    """`paths` as Paths; a FileNotFoundError naming `flag` and every one that does not exist."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"{flag} not found: {', '.join(missing)}")
    return [Path(p) for p in paths]


def git(*args: str) -> str:
    """`git ARGS` in the checkout the bench code runs from, stripped ("" where git or the repository is missing)."""
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30,
                              check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _child(conn, fn, args, kwargs):
    try:
        result = fn(*args, **kwargs)
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        conn.send(("ok", result))
    except BaseException:  # report, do not hang the parent
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def in_fresh_process(fn, *args, timeout: float | None = None, **kwargs) -> dict:
    """Run fn in a spawned process; returns its dict plus `peak_rss_mb` of that process. Past ``timeout`` seconds
    the process is killed and TimeoutError raised (a runaway measurement must not hang the suite)."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, kwargs))
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            proc.kill()
            raise TimeoutError(f"{getattr(fn, '__name__', fn)} took longer than {timeout:.0f} s; killed")
        status, payload = parent.recv()
    except EOFError:  # the child died without reporting (killed, out of memory)
        proc.join()
        status, payload = "error", f"the child process died without a result (exit code {proc.exitcode})"
    finally:
        proc.join()
    if status != "ok":
        raise RuntimeError(f"benchmark step failed in child process:\n{payload}")
    return payload


class Timer:
    """Wall seconds (``seconds``) and this process's CPU seconds (``cpu_seconds``) spent in the block."""

    def __enter__(self):
        self.start, self.cpu_start = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = time.process_time() - self.cpu_start
