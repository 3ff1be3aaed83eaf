"""Load CT Open benchmark files into `Question`s: the benchmark's own pickles and JSON Lines of the same records.

A CT Open record is one (trial, endpoint) with several questions (`question_list_of_lists`, 2 or 3 option sentences
each) and the right option's TEXT per question (`answer_list_of_lists`). We flatten to one `Question` per question,
with `answer` = the index of that text among the options.

Accepted inputs (a file, a comma-separated list of files, or a folder of them; the Dagster `ct_open` resource takes
them from `DEEPIMAGINE_CT_OPEN`):
- `*.pickle` / `*.pkl` as published in ClinicalTrial-OpenChallenge/CT_Open `datasets/`: a dict keyed by
  `(nct_id, endpoint_key)` (or by nct_id), or a list of records. Read with a restricted unpickler that admits only
  builtin containers and scalars, because unpickling runs code named by the file.
- `*.jsonl` / `*.jsonl.gz`: one record per line, `endpoint` already parsed (as in the shared Winter 2025 file).

Leakage: `reported_results` and `question_idx2result_idx_list` (web evidence stating the answers) are never kept.
`list_of_tuples` and `no_arm_label` are kept in `Question.extra` for analysis but they hold the answers (MET /
NOT MET per arm pair, "met" / "not met"); see `ANSWER_BEARING_FIELDS`. Predictors and prompts must not read them.
"""

from __future__ import annotations

import ast
import builtins
import gzip
import io
import json
import os
import pickle
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from deepimagine_core.questions import Question

PICKLE_SUFFIXES = (".pickle", ".pkl")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")

REQUIRED_FIELDS = ("meta_label", "arms", "question_list_of_lists", "answer_list_of_lists")
#: Record fields that state the results (evidence): dropped on load, never stored anywhere.
DROPPED_FIELDS = frozenset({"reported_results", "question_idx2result_idx_list"})
#: Fields kept in `Question.extra` that encode the answers themselves: for analysis only, never model input.
ANSWER_BEARING_FIELDS = frozenset({"list_of_tuples", "no_arm_label"})
_CORE_FIELDS = frozenset({"nct_id", "endpoint_key", "brief_title", "endpoint", *REQUIRED_FIELDS})

#: Builtins a CT Open pickle may name: plain containers and scalars, nothing that can run code.
_SAFE_BUILTINS = frozenset(
    {"dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int", "float", "complex", "bool"}
)


class CTOpenError(ValueError):
    """A CT Open file or record that cannot be used as it is; the message names the file and record."""


class UnsafePickleError(CTOpenError, pickle.UnpicklingError):
    """A pickle that names a class outside the builtin containers and scalars (it could run code when loaded)."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return getattr(builtins, name)
        raise UnsafePickleError(
            f"{self.source}: refusing to unpickle {module}.{name}; CT Open pickles may hold only builtin "
            f"containers and scalars ({', '.join(sorted(_SAFE_BUILTINS))})"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: refusing a persistent id in a pickle ({pid!r})")


def safe_load_pickle(path: str | os.PathLike) -> Any:
    """Unpickle a file admitting only builtin containers and scalars; anything else raises `UnsafePickleError`."""
    with open(path, "rb") as fh:
        try:
            return _RestrictedUnpickler(fh, str(path)).load()
        except UnsafePickleError:
            raise
        except Exception as exc:  # truncated or corrupt file: say which one
            raise CTOpenError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from exc


def resolve_paths(spec: str | os.PathLike | Sequence[str | os.PathLike] | None = None) -> list[Path]:
    """CT Open files named by `spec`: a file, a comma-separated list, a folder (its CT Open files), or a list of
    these. None or empty gives []. A named path that does not exist is an error."""
    if spec is None:
        return []
    if isinstance(spec, (str, os.PathLike)):
        items = [s.strip() for s in os.fspath(spec).split(",")]
    else:
        items = [os.fspath(s).strip() for s in spec]
    paths: list[Path] = []
    for item in filter(None, items):
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and _is_ct_open_file(p))
            if not found:
                raise CTOpenError(f"{path}: folder holds no CT Open files ({', '.join(PICKLE_SUFFIXES + JSONL_SUFFIXES)})")
            paths.extend(found)
        elif path.is_file():
            if not _is_ct_open_file(path):
                raise CTOpenError(f"{path}: not a CT Open file (expected {', '.join(PICKLE_SUFFIXES + JSONL_SUFFIXES)})")
            paths.append(path)
        else:
            raise CTOpenError(f"{path}: no such CT Open file or folder")
    return list(dict.fromkeys(paths))


def _is_ct_open_file(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(PICKLE_SUFFIXES + JSONL_SUFFIXES)


def benchmark_name(path: str | os.PathLike) -> str:
    """A file's benchmark name: its file name without the CT Open suffix, safe as a folder name (`winter_2025`)."""
    name = Path(path).name
    for suffix in sorted(PICKLE_SUFFIXES + JSONL_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "ct_open"


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The raw records of one file, each with `nct_id` and `endpoint_key` filled in (from the pickle's dict key
    when the record itself lacks them). Evidence fields are dropped here, before anything else sees them."""
    path = Path(path)
    if path.name.lower().endswith(PICKLE_SUFFIXES):
        raw = _records_from_pickle_object(safe_load_pickle(path), path)
    elif path.name.lower().endswith(JSONL_SUFFIXES):
        raw = list(_records_from_jsonl(path))
    else:
        raise CTOpenError(f"{path}: not a CT Open file (expected {', '.join(PICKLE_SUFFIXES + JSONL_SUFFIXES)})")
    return [{k: v for k, v in rec.items() if k not in DROPPED_FIELDS} for rec in raw]


def _records_from_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CTOpenError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from exc
            if not isinstance(rec, dict):
                raise CTOpenError(f"{path}:{line_no}: expected a JSON object, got {type(rec).__name__}")
            yield {"_where": f"{path}:{line_no}", **rec}


def _records_from_pickle_object(obj: Any, path: Path) -> list[dict[str, Any]]:
    """Flatten the shapes CT Open pickles come in: {(nct_id, endpoint_key): record}, {nct_id: record | [records] |
    {endpoint_key: record}}, or [record, ...]."""
    out: list[dict[str, Any]] = []

    def add(rec: Any, where: str, **ids: str) -> None:
        if not isinstance(rec, dict):
            raise CTOpenError(f"{path}: record {where} is a {type(rec).__name__}, expected a dict of fields")
        out.append({"_where": f"{path}: record {where}", **{k: v for k, v in ids.items() if k not in rec}, **rec})

    if isinstance(obj, list):
        for i, rec in enumerate(obj):
            add(rec, f"#{i}")
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(key, tuple) and len(key) == 2:
                add(value, repr(key), nct_id=str(key[0]), endpoint_key=str(key[1]))
            elif isinstance(key, str) and isinstance(value, list):
                for i, rec in enumerate(value):
                    add(rec, f"{key}#{i}", nct_id=key)
            elif isinstance(key, str) and isinstance(value, dict) and "question_list_of_lists" not in value:
                for ek, rec in value.items():
                    add(rec, f"({key!r}, {ek!r})", nct_id=key, endpoint_key=str(ek))
            elif isinstance(key, str):
                add(value, repr(key), nct_id=key)
            else:
                raise CTOpenError(f"{path}: unexpected key {key!r}; expected (nct_id, endpoint_key) or an NCT id")
    else:
        raise CTOpenError(f"{path}: a CT Open pickle holds a dict or a list of records, not a {type(obj).__name__}")
    return out


def _parse_endpoint(rec: dict[str, Any], where: str) -> dict[str, Any]:
    value = rec.get("endpoint", rec.get("endpoint_key"))
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = ast.literal_eval(value)  # literals only: safe on untrusted text
        except (ValueError, SyntaxError) as exc:
            raise CTOpenError(f"{where}: endpoint is not a dict literal: {value[:120]!r}") from exc
        if isinstance(parsed, dict):
            return parsed
    raise CTOpenError(f"{where}: record has no usable 'endpoint' (or 'endpoint_key') dict")


def record_questions(rec: dict[str, Any]) -> list[Question]:
    """One `Question` per question of a record; a missing field or an answer that is not among its options raises
    `CTOpenError` naming the record."""
    nct = rec.get("nct_id")
    where = f"{rec.get('_where', 'record')} (nct_id={nct!r})"
    missing = [f for f in ("nct_id", *REQUIRED_FIELDS) if rec.get(f) is None]
    if "endpoint" not in rec and "endpoint_key" not in rec:
        missing.append("endpoint")
    if missing:
        raise CTOpenError(f"{where}: missing field(s) {', '.join(missing)}")
    endpoint = _parse_endpoint(rec, where)
    endpoint_key = str(rec.get("endpoint_key") or str(endpoint))
    questions, answers = rec["question_list_of_lists"], rec["answer_list_of_lists"]
    if len(questions) != len(answers):
        raise CTOpenError(f"{where}: {len(questions)} questions but {len(answers)} answers")
    extra = {k: v for k, v in rec.items() if k not in _CORE_FIELDS and not k.startswith("_")}
    extra = json.loads(json.dumps(extra, default=_jsonable))  # tuples/sets -> lists so extra is plain JSON
    out = []
    for qi, (options, answer_text) in enumerate(zip(questions, answers)):
        options = [str(o) for o in options]
        if len(options) not in (2, 3):
            raise CTOpenError(f"{where}: question {qi} has {len(options)} options (CT Open uses 2 or 3)")
        answer = _answer_index(options, answer_text)
        if answer is None:
            raise CTOpenError(f"{where}: question {qi}: answer {str(answer_text)[:80]!r} is not one of its options")
        out.append(
            Question(
                nct_id=str(nct),
                endpoint_key=endpoint_key,
                question_index=qi,
                brief_title=str(rec.get("brief_title") or ""),
                endpoint=endpoint,
                arms=list(rec["arms"]),
                meta_label=str(rec["meta_label"]),
                options=options,
                answer=answer,
                extra=dict(extra),
            )
        )
    return out


def _answer_index(options: list[str], answer: Any) -> int | None:
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(options):
        return answer  # some exports store the index rather than the text
    squash = lambda s: " ".join(str(s).split()).casefold()  # noqa: E731 - whitespace/case-insensitive match
    target = squash(answer)
    matches = [i for i, o in enumerate(options) if squash(o) == target]
    return matches[0] if len(matches) == 1 else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def load_file(path: str | os.PathLike) -> list[Question]:
    """All questions of one CT Open file, in file order."""
    questions: list[Question] = []
    for rec in read_records(path):
        questions.extend(record_questions(rec))
    return questions


def load_benchmarks(spec: str | os.PathLike | Sequence[str | os.PathLike] | None = None) -> dict[str, list[Question]]:
    """{benchmark name: questions} for every file `spec` names (see `resolve_paths`); names are made unique."""
    out: dict[str, list[Question]] = {}
    for path in resolve_paths(spec):
        name, n = benchmark_name(path), 2
        while name in out:
            name, n = f"{benchmark_name(path)}_{n}", n + 1
        out[name] = load_file(path)
    return out


def source_fingerprint(spec: str | os.PathLike | Sequence[str | os.PathLike] | None = None) -> list[list]:
    """[[path, size, mtime_ns], ...] of the files `spec` names (their contents unread): tells whether what was read
    from them before still stands."""
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in resolve_paths(spec)]


def benchmark_nct_ids(spec: str | os.PathLike | Sequence[str | os.PathLike] | None = None) -> set[str]:
    """NCT ids of every trial in the CT Open files `spec` names: keep these out of training data."""
    ids: set[str] = set()
    for path in resolve_paths(spec):
        for rec in read_records(path):
            if rec.get("nct_id") is None:
                raise CTOpenError(f"{rec.get('_where', path)}: missing field nct_id")
            ids.add(str(rec["nct_id"]))
    return ids
