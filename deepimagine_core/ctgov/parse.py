"""One raw record -> one `ParsedStudy` (rows of every trial table), whatever its source format.

    parsed = parse_study(raw)      # raises RecordError for a record that cannot be used at all
    parsed = parse_study(raw, buffers)   # appends the rows to a batch's column buffers (`ctgov.columns.Buffers`)

Record-level failures (malformed XML/JSON, no NCT id, no results, wrong root element, unknown format) raise
`RecordError(reason, nct_id=..., stage="parse")`; value-level problems never do: they leave a null value (raw text
kept) and an entry in `ParsedStudy.field_issues`.
"""

from __future__ import annotations

from deepimagine_core.ctgov.parse_legacy_xml import parse_legacy_xml
from deepimagine_core.ctgov.parse_v2_json import parse_v2_json
from deepimagine_core.ctgov.records import API_V2_JSON, LEGACY_XML, ParsedStudy, RawStudy, RecordError

PARSERS = {LEGACY_XML: parse_legacy_xml, API_V2_JSON: parse_v2_json}


def parse_study(raw: RawStudy, buffers=None) -> ParsedStudy:
    """Parse a raw study with the parser of its `source_format`, into `buffers` (fresh ones when None; on an error
    the rows it added are left there: the caller rolls them back)."""
    parser = PARSERS.get(raw.source_format)
    if parser is None:
        raise RecordError(f"unknown source format {raw.source_format!r}", nct_id=raw.nct_id)
    try:
        return parser(raw, buffers)
    except (AttributeError, TypeError, KeyError, IndexError) as exc:
        # a record whose structure is not the schema's (a module that is text, a list where an object belongs ...)
        where = exc.__traceback__
        while where.tb_next is not None:
            where = where.tb_next
        raise RecordError(
            f"malformed {raw.source_format} record: a field has an unexpected type or shape "
            f"({type(exc).__name__}: {exc}, in {where.tb_frame.f_code.co_name})",
            nct_id=raw.nct_id,
        ) from exc
