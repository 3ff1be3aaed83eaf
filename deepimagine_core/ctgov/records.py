"""What flows between the source readers, the raw layer and the parsers.

A reader (API client or archive reader) yields `RawStudy` objects; the raw layer stores them as JSON Lines
(`RawStudy.to_json` / `from_json`); a parser turns one into a `ParsedStudy` or raises `RecordError`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

LEGACY_XML = "legacy_xml"
API_V2_JSON = "api_v2_json"


class SourceError(Exception):
    """A trial source that cannot be published from (missing, empty, stopped early): one line naming the source.
    Nothing is published when it is raised; the tables of an earlier refresh stay as they were."""


class SourceNotFound(SourceError, FileNotFoundError):
    """The trial source path does not exist."""


class RecordError(Exception):
    """A study that cannot be used at all; it goes to `quarantine` at level `record`."""

    def __init__(self, reason: str, *, nct_id: str | None = None, stage: str = "parse"):
        super().__init__(reason)
        self.reason = reason
        self.nct_id = nct_id
        self.stage = stage


@dataclass
class RawStudy:
    source_format: str  # LEGACY_XML | API_V2_JSON
    source_ref: str  # e.g. "/data/x.tar.gz!dir/NCT00000620.xml", "api:page=3", "sample:legacy_xml/NCT...xml"
    payload: bytes | str | dict | None  # the XML document (bytes as read, or text), or the API v2 study object;
    # None when the reader failed (see error)
    nct_id: str | None = None  # when cheaply known before parsing
    version: str | None = None  # last-update date (ISO) when cheaply known; newest version wins on duplicates
    error: str | None = None  # set by a reader that could not read this record (truncated, malformed ...)
    stopped: bool = False  # with `error`: the stream stopped here (truncated archive, cut JSON array): records lost


    def to_json(self) -> str:
        return json.dumps(
            {
                "source_format": self.source_format,
                "source_ref": self.source_ref,
                "nct_id": self.nct_id,
                "version": self.version,
                "error": self.error,
                "payload": self.payload.decode("utf-8", "replace") if isinstance(self.payload, bytes) else self.payload,
                **({"stopped": True} if self.stopped else {}),
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, line: str) -> "RawStudy":
        d = json.loads(line)
        return cls(
            source_format=d["source_format"],
            source_ref=d["source_ref"],
            payload=d.get("payload"),
            nct_id=d.get("nct_id"),
            version=d.get("version"),
            error=d.get("error"),
            stopped=bool(d.get("stopped")),
        )


@dataclass
class ParsedStudy:
    """A parsed study: its rows sit in the column buffers (`ctgov.columns.Buffers`) the parser appended to."""

    nct_id: str
    last_update: dt.date | None
    field_issues: list[dict[str, Any]] = field(default_factory=list)  # {"stage": "value", "reason": ...} per value dropped
    buffers: Any = None  # the Buffers holding the rows (of this study alone when it came from `parse_study`)

    @property
    def rows(self) -> dict[str, list[dict[str, Any]]]:
        """table name -> this study's rows as dicts (see schemas.TABLES; quarantine is always empty). Only for a
        study parsed into buffers of its own (`parse_study`): it reads every row of the buffers."""
        return self.buffers.rows()
