"""JSON readers of ClinicalTrials.gov API v2 studies: `RawStudy` records from a byte stream, memory flat in its size.

    iter_json(stream, ref)     ONE study, a JSON ARRAY of studies (decoded item by item) or an API page {"studies": [...]}
    iter_jsonl(stream, ref)    one study per line (lines already in raw-layer form, `RawStudy.to_json`, pass through)

A record that cannot be read becomes `error_record(...)` (payload None, the reason in `error`); when the stream itself
stopped (a cut array, a damaged .gz, a line cut by the end of the data) the record says so with `stopped=True`.
The container readers (folders, tar, zip) are in `deepimagine_core.ctgov.archives`.
"""

from __future__ import annotations

import gzip
import json
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from deepimagine_core.ctgov.records import API_V2_JSON, RawStudy

_NCT_RE = re.compile(r"NCT\d{8}")
_CHUNK = 1 << 16
# Errors a damaged compressed stream or archive raises while being read.
STREAM_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, tarfile.TarError, zipfile.BadZipFile, OSError)


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
                    yield error_record(API_V2_JSON, line_ref, reason, stopped=True)
                    return
                yield error_record(API_V2_JSON, line_ref, f"malformed JSON line: {exc}")
                continue
            if _is_raw_record(value):
                yield RawStudy.from_json(raw)
            else:
                yield _json_study(value, line_ref)
    except STREAM_ERRORS as exc:
        yield error_record(API_V2_JSON, ref, f"stream damaged or truncated after line {line_no}: {exc}", stopped=True)


def iter_json(stream: IO[bytes], ref: str) -> Iterator[RawStudy]:
    """One JSON document: a study, an array of studies (decoded item by item) or an API page of studies.
    An array that cannot be read to its end stopped the stream; a single value that cannot be read is one bad record."""
    reader = _JsonReader(stream)
    in_array = False
    try:
        first = reader.peek()
        if first == "":
            yield error_record(API_V2_JSON, ref, "empty file: no JSON value")
            return
        if first != "[":
            value = reader.value()
            if not reader.at_end():
                yield error_record(API_V2_JSON, ref, f"extra data after the JSON value at character {reader.offset}")
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
        yield error_record(API_V2_JSON, ref, reason, stopped=in_array)
    except UnicodeDecodeError as exc:
        yield error_record(API_V2_JSON, ref, f"not UTF-8 text: {exc}", stopped=in_array)
    except STREAM_ERRORS as exc:
        reason = f"stream damaged or truncated at character {reader.offset}: {exc}"
        yield error_record(API_V2_JSON, ref, reason, stopped=in_array)


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
        return error_record(API_V2_JSON, ref, f"not a ClinicalTrials.gov API v2 study object ({what})")
    nct_id, version = study_identity(value)
    return RawStudy(API_V2_JSON, ref, value, nct_id=nct_id, version=version)


def nct_from_name(name: str) -> str | None:
    match = _NCT_RE.search(Path(name).name)
    return match.group(0) if match else None


def error_record(fmt: str, ref: str, reason: str, nct_id: str | None = None, stopped: bool = False) -> RawStudy:
    nct_id = nct_id or nct_from_name(ref.rsplit("!", 1)[-1])
    return RawStudy(fmt, ref, None, nct_id=nct_id, error=reason, stopped=stopped)
