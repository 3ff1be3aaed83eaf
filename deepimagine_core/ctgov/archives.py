"""Streaming readers of ClinicalTrials.gov files: every container kind in, `RawStudy` records out.

`iter_source(path)` recognises
    a folder                 NCT*.xml and/or *.json files, recursively (other files are not records and are skipped)
    .tar, .tar.gz, .tgz      legacy XML `NCT*.xml` members, or API v2 JSON members
    .zip                     ClinicalTrials.gov's bulk download: one JSON file per study, one JSON array, or NCT*.xml
    .json (.json.gz)         ONE API v2 study, a JSON ARRAY of studies (streamed), or an API page {"studies": [...]}
    .jsonl / .ndjson (.gz)   one study per line (lines already in raw-layer form, `RawStudy.to_json`, pass through)
    .xml                     one legacy XML study

Memory stays flat in the number of studies: archives are read member by member (tar in stream mode), JSON arrays
are decoded item by item (`json.JSONDecoder.raw_decode` over a growing buffer), JSON Lines line by line.

Bad input never crashes a run and never disappears: a record that cannot be read becomes
`RawStudy(payload=None, error=<reason>)`, which the parsing stage turns into a quarantine row. Where reading can
go on (a bad line, a corrupt zip member) it goes on; where it cannot (a truncated .gz or tar, a cut JSON array or
JSON Lines file, an unreadable zip) one error record with `stopped=True` says where the stream stopped (the run then
fails unless the source allows partial reads). An empty archive yields nothing. A missing path raises
`SourceNotFound` (a FileNotFoundError), an unknown kind `UnsupportedSource` (a ValueError).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import logging
import os
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from deepimagine_core.ctgov.records import API_V2_JSON, LEGACY_XML, RawStudy, SourceError, SourceNotFound

log = logging.getLogger(__name__)

SUPPORTED_KINDS = (
    "a folder of NCT*.xml / *.json files, .tar, .tar.gz, .tgz, .zip, .json, .json.gz, "
    ".jsonl, .jsonl.gz, .ndjson, .ndjson.gz, .xml"
)
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
SAMPLE_FILES = ("v2_json_studies.jsonl.gz", "legacy_xml_sample.tar.gz")

_NCT_RE = re.compile(r"NCT\d{8}")
_XML_NCT_RE = re.compile(r"<nct_id>\s*(NCT\d{8})\s*</nct_id>")
_XML_DATE_RE = re.compile(r"<(?:last_update_posted|lastchanged_date)[^>]*>([^<]+)</")
_CHUNK = 1 << 16
# Errors a damaged compressed stream or archive raises while being read.
_STREAM_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, tarfile.TarError, zipfile.BadZipFile, OSError)


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


def study_identity(study: Any) -> tuple[str | None, str | None]:
    """(nct_id, version) of an API v2 study object: identificationModule.nctId and the last-update post date."""
    if not isinstance(study, dict):
        return None, None
    protocol = study.get("protocolSection")
    if not isinstance(protocol, dict):
        return None, None
    ident = protocol.get("identificationModule") or {}
    status = protocol.get("statusModule") or {}
    nct = ident.get("nctId") if isinstance(ident, dict) else None
    date = None
    if isinstance(status, dict):
        struct = status.get("lastUpdatePostDateStruct")
        if isinstance(struct, dict):
            date = struct.get("date")
    return (nct if isinstance(nct, str) else None), (date if isinstance(date, str) else None)


def iter_jsonl(stream: IO[bytes], ref: str) -> Iterator[RawStudy]:
    """One record per non-blank line of a binary stream; a bad line is an error record, a damaged stream ends it."""
    line_no = 0
    try:
        for line_no, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            line_ref = f"{ref}:line {line_no}"
            try:
                value = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                if not raw.endswith(b"\n"):  # the last line, cut short: the stream stopped in the middle of it
                    reason = f"stream cut in the middle of line {line_no}: {exc}"
                    yield _error(API_V2_JSON, line_ref, reason, stopped=True)
                    return
                yield _error(API_V2_JSON, line_ref, f"malformed JSON line: {exc}")
                continue
            if _is_raw_record(value):
                yield RawStudy.from_json(raw)
            else:
                yield _json_study(value, line_ref)
    except _STREAM_ERRORS as exc:
        yield _error(API_V2_JSON, ref, f"stream damaged or truncated after line {line_no}: {exc}", stopped=True)


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
            yield from _iter_json_stream(stream, ref)


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
        yield from (iter_jsonl(stream, ref) if kind == "jsonl" else _iter_json_stream(stream, ref))
    else:
        log.debug("skipping non-record member %s", ref)


def _is_hidden(name: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in Path(name).parts)


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
                yield _error(_format_of(name), member_ref, f"cannot read file: {exc}")


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
    except _STREAM_ERRORS as exc:
        yield _error(fmt, ref, f"archive truncated or corrupt after member {last}: {exc}", stopped=True)


def _iter_zip(path: Path, ref: str) -> Iterator[RawStudy]:
    """Zip members in order; a corrupt member is an error record and reading goes on with the next one."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield _error(API_V2_JSON, ref, f"not a readable zip archive: {exc}", stopped=True)
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
            except (*_STREAM_ERRORS, RuntimeError, NotImplementedError) as exc:  # bad CRC/data, encrypted, odd method
                yield _error(_format_of(name), member_ref, f"corrupt or unreadable zip member: {exc}")


# ----------------------------------------------------------------------------------------------------------------- JSON
def _iter_json_stream(stream: IO[bytes], ref: str) -> Iterator[RawStudy]:
    """One JSON document: a study, an array of studies (decoded item by item) or an API page of studies.
    An array that cannot be read to its end stopped the stream; a single value that cannot be read is one bad record."""
    reader = _JsonReader(stream)
    in_array = False
    try:
        first = reader.peek()
        if first == "":
            yield _error(API_V2_JSON, ref, "empty file: no JSON value")
            return
        if first != "[":
            value = reader.value()
            if not reader.at_end():
                yield _error(API_V2_JSON, ref, f"extra data after the JSON value at character {reader.offset}")
            studies = value.get("studies") if isinstance(value, dict) else None
            if isinstance(studies, list) and "protocolSection" not in value:
                for i, study in enumerate(studies):
                    yield _json_study(study, f"{ref}:item {i}")
            else:
                yield _json_study(value, ref)
            return
        in_array = True
        for index, item in enumerate(reader.array_items()):
            yield _json_study(item, f"{ref}:item {index}")
    except json.JSONDecodeError as exc:
        reason = f"malformed or truncated JSON, reading stopped at character {reader.offset}: {exc.msg}"
        yield _error(API_V2_JSON, ref, reason, stopped=in_array)
    except UnicodeDecodeError as exc:
        yield _error(API_V2_JSON, ref, f"not UTF-8 text: {exc}", stopped=in_array)
    except _STREAM_ERRORS as exc:
        reason = f"stream damaged or truncated at character {reader.offset}: {exc}"
        yield _error(API_V2_JSON, ref, reason, stopped=in_array)


class _JsonReader:
    """Incremental decoder over a binary stream: values are decoded from a buffer that grows only as needed."""

    def __init__(self, stream: IO[bytes]):
        self._bytes = stream
        self._decoder = json.JSONDecoder()
        self._pending = b""  # undecoded tail of the last chunk (a split UTF-8 sequence)
        self._buf = ""
        self._pos = 0
        self._eof = False
        self.offset = 0  # characters consumed, for error messages

    def _fill(self, at_least: int = _CHUNK) -> bool:
        """Read at least `at_least` more bytes into the buffer; False at end of stream."""
        if self._eof:
            return False
        chunk = self._bytes.read(max(at_least, _CHUNK))
        if not chunk:
            self._eof = True
            if self._pending:
                self._pending.decode("utf-8")  # raises UnicodeDecodeError on a cut multi-byte character
            return False
        data = self._pending + chunk
        cut = _utf8_safe_cut(data)
        self._pending = data[cut:]
        self._buf = self._buf[self._pos :] + data[:cut].decode("utf-8")
        self._pos = 0
        return True

    def _skip_ws(self) -> str:
        while True:
            while self._pos < len(self._buf) and self._buf[self._pos] in " \t\r\n\ufeff":
                self._pos += 1
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return ""

    def peek(self) -> str:
        return self._skip_ws()

    def at_end(self) -> bool:
        return self._skip_ws() == ""

    def _advance(self, n: int) -> None:
        self._pos += n
        self.offset += n

    def value(self) -> Any:
        """Decode the next value, reading more (doubling) until it is complete or the stream ends."""
        self._skip_ws()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                # Only a value cut by the buffer's end is worth more data; a real syntax error stops here.
                cut = exc.pos >= len(self._buf) - 1 or exc.msg.startswith("Unterminated string")
                if cut and self._fill(len(self._buf) - self._pos):
                    continue
                raise
            # A number at the very end of the buffer may continue in the next chunk.
            if end == len(self._buf) and not isinstance(value, (dict, list, str)) and self._fill():
                continue
            self._advance(end - self._pos)
            return value

    def array_items(self) -> Iterator[Any]:
        self._advance(1)  # "["
        if self._skip_ws() == "]":
            self._advance(1)
            return
        while True:
            yield self.value()
            sep = self._skip_ws()
            if sep == ",":
                self._advance(1)
                continue
            if sep == "]":
                self._advance(1)
                if not self.at_end():
                    raise json.JSONDecodeError("extra data after the array", self._buf, self._pos)
                return
            problem = "expected ',' or ']' in array" if sep else "array not closed"
            raise json.JSONDecodeError(problem, self._buf, self._pos)


def _utf8_safe_cut(data: bytes) -> int:
    """Index up to which `data` holds only whole UTF-8 characters (at most 3 trailing bytes held back)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)
        if byte >= 0xC0:  # lead byte: is its sequence complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= need else len(data) - back
    return len(data)


def _is_raw_record(value: Any) -> bool:
    return isinstance(value, dict) and "source_format" in value and "source_ref" in value and "payload" in value


def _json_study(value: Any, ref: str) -> RawStudy:
    if not isinstance(value, dict) or not isinstance(value.get("protocolSection"), dict):
        what = f"object with keys {sorted(value)[:5]}" if isinstance(value, dict) else type(value).__name__
        return _error(API_V2_JSON, ref, f"not a ClinicalTrials.gov API v2 study object ({what})")
    nct_id, version = study_identity(value)
    return RawStudy(API_V2_JSON, ref, value, nct_id=nct_id, version=version)


# ------------------------------------------------------------------------------------------------------------------ XML
def _xml_study(data: bytes, name: str, ref: str) -> RawStudy:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return _error(LEGACY_XML, ref, f"not UTF-8 text: {exc}", nct_id=_nct_from_name(name))
    if not text.strip():
        return _error(LEGACY_XML, ref, "empty XML file", nct_id=_nct_from_name(name))
    match = _XML_NCT_RE.search(text)
    nct_id = _nct_from_name(name) or (match.group(1) if match else None)
    return RawStudy(LEGACY_XML, ref, text, nct_id=nct_id, version=_xml_version(text))


def _xml_version(text: str) -> str | None:
    """ISO date of `last_update_posted` / `lastchanged_date` ("February 3, 2016"), None when absent or odd."""
    match = _XML_DATE_RE.search(text)
    if not match:
        return None
    raw = match.group(1).strip()
    for fmt in ("%B %d, %Y", "%B %Y"):
        try:
            return dt.datetime.strptime(raw, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def _nct_from_name(name: str) -> str | None:
    match = _NCT_RE.search(Path(name).name)
    return match.group(0) if match else None


def _format_of(name: str) -> str:
    return LEGACY_XML if _kind(name) == "xml" else API_V2_JSON


def _error(fmt: str, ref: str, reason: str, nct_id: str | None = None, stopped: bool = False) -> RawStudy:
    nct_id = nct_id or _nct_from_name(ref.rsplit("!", 1)[-1])
    return RawStudy(fmt, ref, None, nct_id=nct_id, error=reason, stopped=stopped)
