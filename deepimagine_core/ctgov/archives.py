"""Streaming readers of ClinicalTrials.gov files: every container kind in, `RawStudy` records out.

`iter_source(path)` recognises
    a folder                 NCT*.xml and/or *.json files, recursively (other files are not records and are skipped)
    .tar, .tar.gz, .tgz      legacy XML `NCT*.xml` members, or API v2 JSON members
    .zip                     ClinicalTrials.gov's bulk download: one JSON file per study, one JSON array, or NCT*.xml
    .json (.json.gz)         ONE API v2 study, a JSON ARRAY of studies (streamed), or an API page {"studies": [...]}
    .jsonl / .ndjson (.gz)   one study per line (lines already in raw-layer form, `RawStudy.to_json`, pass through)
    .xml                     one legacy XML study

Memory stays flat in the number of studies: archives are read member by member (tar in stream mode), JSON arrays
are decoded item by item (`json.JSONDecoder.raw_decode` over a growing buffer), JSON Lines line by line (the JSON
readers are in `deepimagine_core.ctgov.json_records`).

Bad input never crashes a run and never disappears: a record that cannot be read becomes
`RawStudy(payload=None, error=<reason>)`, which the parsing stage turns into a quarantine row. Where reading can
go on (a bad line, a corrupt zip member) it goes on; where it cannot (a truncated .gz or tar, a cut JSON array or
JSON Lines file, an unreadable zip) one error record with `stopped=True` says where the stream stopped (the run then
fails unless the source allows partial reads). An empty archive yields nothing. A missing path raises
`SourceNotFound` (a FileNotFoundError), an unknown kind `UnsupportedSource` (a ValueError).
"""

from __future__ import annotations

import codecs
import datetime as dt
import gzip
import io
import logging
import os
import re
import tarfile
import zipfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import IO

from deepimagine_core.ctgov.json_records import (  # noqa: F401 - study_identity: also importable from here
    STREAM_ERRORS,
    error_record,
    iter_json,
    iter_jsonl,
    nct_from_name,
    study_identity,
)
from deepimagine_core.ctgov.records import API_V2_JSON, LEGACY_XML, RawStudy, SourceError, SourceNotFound

log = logging.getLogger(__name__)

SUPPORTED_KINDS = (
    "a folder of NCT*.xml / *.json files, .tar, .tar.gz, .tgz, .zip, .json, .json.gz, "
    ".jsonl, .jsonl.gz, .ndjson, .ndjson.gz, .xml"
)
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
SAMPLE_FILES = ("v2_json_studies.jsonl.gz", "legacy_xml_sample.tar.gz")

_XML_NCT_RE = re.compile(rb"<nct_id>\s*(NCT\d{8})\s*</nct_id>")
_XML_DATE_RE = re.compile(rb"<(?:last_update_posted|lastchanged_date)[^>]*>([^<]+)</")


class UnsupportedSource(SourceError, ValueError):
    """A trial source path of a kind no reader knows."""


# -------------------------------------------------------------------------------------------------- public entry points
def iter_source(path: str | os.PathLike, label: str | None = None) -> Iterator[RawStudy]:
    """Yield every study in `path` (any kind listed in the module docstring) as a `RawStudy`.

    `label` replaces the path in `source_ref` (e.g. "sample:legacy_xml_sample.tar.gz").
    """
    p = Path(path)
    if not p.exists():
        raise SourceNotFound(f"trial source not found: {p}")
    ref = label or str(p)
    if p.is_dir():
        return _iter_folder(p, ref)
    kind = _kind(p.name)
    if kind is None:
        raise UnsupportedSource(f"unsupported trial source {p}: expected {SUPPORTED_KINDS}")
    if kind in ("tar", "zip", "jsonl") and p.stat().st_size == 0:
        log.warning("empty archive %s: no studies", p)
        return iter(())
    if kind == "tar":
        return _iter_tar(p, ref)
    if kind == "zip":
        return _iter_zip(p, ref)
    return _iter_file(p, kind, ref)


def iter_embedded_sample() -> Iterator[RawStudy]:
    """Both files of the embedded sample (98 API v2 JSON studies, then 250 legacy XML studies)."""
    for name in SAMPLE_FILES:
        yield from iter_source(SAMPLE_DIR / name, label=f"sample:{name}")


# ---------------------------------------------------------------------------------------------------------- dispatching
def _kind(name: str) -> str | None:
    n = name.lower()
    if n.endswith((".tar", ".tar.gz", ".tgz")):
        return "tar"
    if n.endswith(".zip"):
        return "zip"
    if n.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        return "jsonl"
    if n.endswith((".json", ".json.gz")):
        return "json"
    if n.endswith(".xml"):
        return "xml"
    return None


def _open_maybe_gz(path: Path) -> IO[bytes]:
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller's `with`
    return gzip.GzipFile(fileobj=raw, mode="rb") if path.name.lower().endswith(".gz") else raw


def _iter_file(path: Path, kind: str, ref: str) -> Iterator[RawStudy]:
    if kind == "xml":
        yield _xml_study(path.read_bytes(), path.name, ref)
        return
    with _open_maybe_gz(path) as stream:
        if kind == "jsonl":
            yield from iter_jsonl(stream, ref)
        else:
            yield from iter_json(stream, ref)


def _iter_member(data_or_stream: bytes | IO[bytes], name: str, ref: str) -> Iterator[RawStudy]:
    """Records of one file inside a folder or an archive, by its name; non-record files yield nothing."""
    kind = _kind(name)
    if kind == "xml":
        data = data_or_stream if isinstance(data_or_stream, bytes) else data_or_stream.read()
        yield _xml_study(data, name, ref)
    elif kind in ("json", "jsonl"):
        stream = io.BytesIO(data_or_stream) if isinstance(data_or_stream, bytes) else data_or_stream
        if name.lower().endswith(".gz"):
            stream = gzip.GzipFile(fileobj=stream, mode="rb")
        yield from (iter_jsonl(stream, ref) if kind == "jsonl" else iter_json(stream, ref))
    else:
        log.debug("skipping non-record member %s", ref)


def _is_hidden(name: str) -> bool:
    """A part of the path starts with "." or is "__MACOSX" (the parts `Path(name).parts` has: no empty or "."
    parts; split by hand, once per member of an archive)."""
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/") if part not in ("", "."))


# ----------------------------------------------------------------------------------------------------------- containers
def _iter_folder(root: Path, ref: str) -> Iterator[RawStudy]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        for name in sorted(filenames):
            if _is_hidden(name) or _kind(name) not in ("xml", "json", "jsonl"):
                continue
            path = Path(dirpath) / name
            member_ref = f"{ref}!{path.relative_to(root).as_posix()}"
            try:
                with open(path, "rb") as fh:
                    yield from _iter_member(fh, name, member_ref)
            except OSError as exc:
                yield error_record(_format_of(name), member_ref, f"cannot read file: {exc}")


def _iter_tar(path: Path, ref: str) -> Iterator[RawStudy]:
    """Tar members in stream mode (no index held); a damaged archive ends with one error record."""
    last = "(start of archive)"
    fmt = LEGACY_XML
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                tar.members = []  # stream mode still remembers members; forget them to keep memory flat
                if not member.isfile() or _is_hidden(member.name) or _kind(member.name) is None:
                    continue
                fmt = _format_of(member.name)
                fh = tar.extractfile(member)
                data = fh.read() if fh is not None else b""
                yield from _iter_member(data, member.name, f"{ref}!{member.name}")
                last = member.name
    except STREAM_ERRORS as exc:
        yield error_record(fmt, ref, f"archive truncated or corrupt after member {last}: {exc}", stopped=True)


def _iter_zip(path: Path, ref: str) -> Iterator[RawStudy]:
    """Zip members in order; a corrupt member is an error record and reading goes on with the next one."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield error_record(API_V2_JSON, ref, f"not a readable zip archive: {exc}", stopped=True)
        return
    with archive:
        for info in archive.infolist():
            name = info.filename
            if info.is_dir() or _is_hidden(name) or _kind(name) is None:
                continue
            member_ref = f"{ref}!{name}"
            try:
                with archive.open(info) as fh:
                    yield from _iter_member(fh, name, member_ref)
            except (*STREAM_ERRORS, RuntimeError, NotImplementedError) as exc:  # bad CRC/data, encrypted, odd method
                yield error_record(_format_of(name), member_ref, f"corrupt or unreadable zip member: {exc}")


# ------------------------------------------------------------------------------------------------------------------ XML
def _xml_study(data: bytes, name: str, ref: str) -> RawStudy:
    """The XML document as read (bytes: lxml parses them as they are, no decoding here nor re-encoding in the parser,
    and they cross to a parse worker as they are); its NCT id and last-update date found by byte patterns."""
    data = data.removeprefix(codecs.BOM_UTF8)
    if not data or data.isspace():  # not `data.strip()`: that copies the whole document
        return error_record(LEGACY_XML, ref, "empty XML file", nct_id=nct_from_name(name))
    nct_id = nct_from_name(name)
    if nct_id is None:
        match = _XML_NCT_RE.search(data)
        nct_id = match.group(1).decode("ascii") if match else None
    return RawStudy(LEGACY_XML, ref, data, nct_id=nct_id, version=_xml_version(data))


def _xml_version(data: bytes) -> str | None:
    """ISO date of `last_update_posted` / `lastchanged_date` ("February 3, 2016"), None when absent or odd."""
    match = _XML_DATE_RE.search(data)
    return _iso_date(match.group(1)) if match else None


@lru_cache(maxsize=4096)
def _iso_date(raw: bytes) -> str | None:
    """The ISO form of a legacy date text ("February 3, 2016" -> "2016-02-03"), None when odd (cached: strptime is
    slow and dates repeat across studies)."""
    raw = raw.decode("utf-8", "replace").strip()
    for fmt in ("%B %d, %Y", "%B %Y"):
        try:
            return dt.datetime.strptime(raw, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def _format_of(name: str) -> str:
    return LEGACY_XML if _kind(name) == "xml" else API_V2_JSON


