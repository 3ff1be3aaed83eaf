"""Column buffers: the parsers append every value straight into its table's column, never a dict per row.

    buffers = Buffers()                    # one Python list per column of every trial table, in schema order
    buffers.tables["locations"].add(nct_id, 0, "Site", "Paris", None, None, "France")
    mark = buffers.mark(); ...; buffers.commit(seq)   # or buffers.rollback(mark) when the study is rejected
    tables, rejected = buffers.to_arrow()  # one Arrow table per trial table (with `_seq`), one conversion per column

A batch of studies shares one `Buffers`: each study's rows are contiguous, and `commit(seq)` records how many rows of
each table it owns, so `to_arrow` tags every row with its record's sequence number. A record whose values do not fit
a column's type (a value out of range) is found by converting its rows alone, left out, and returned in `rejected`.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa

from deepimagine_core.ctgov.schemas import TABLES
from deepimagine_core.tables import QUARANTINE_TABLE

SEQ = "_seq"
_CONVERSION_ERRORS = (pa.ArrowException, OverflowError, TypeError, ValueError)


@cache
def _adder_code(n: int) -> types.CodeType:
    """The code of `add(v0, ..., v<n-1>)`: `a0(v0); ...; a<n-1>(v<n-1>)`, the `a<i>` read from its globals."""
    names = [f"v{i}" for i in range(n)]
    space: dict = {}
    source = f"def add({', '.join(names)}):\n    " + "; ".join(f"a{i}({v})" for i, v in enumerate(names))
    exec(source, space)  # noqa: S102 - the source is built here from a count, nothing read from outside
    return space["add"].__code__


def _adder(lists: tuple[list, ...]) -> Callable[..., None]:
    """A function of one argument per list appending each to its list: `add(a, b)` runs `la.append(a)`,
    `lb.append(b)` with the bound methods as its globals (a third of the cost of a loop over the columns; a wrong
    number of values is a TypeError, as for any call)."""
    return types.FunctionType(_adder_code(len(lists)), {f"a{i}": column.append for i, column in enumerate(lists)})


class Columns:
    """The column buffers of one table: one list per column of `schema`, in its order. `add(*values)` appends one
    row: exactly one value per column, in schema order."""

    __slots__ = ("add", "lists", "names", "schema")

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self.names = tuple(schema.names)
        self.lists = tuple([] for _ in self.names)
        self.add = _adder(self.lists)  # the lists are only ever cut in place (`truncate`, `delete`), never replaced

    def appenders(self) -> tuple:
        """The columns' bound `append` methods, in schema order (for a parser's innermost loop)."""
        return tuple(column.append for column in self.lists)

    def __len__(self) -> int:
        return len(self.lists[0])

    def column(self, name: str, start: int = 0) -> list:
        return self.lists[self.names.index(name)][start:]

    def rows(self, start: int = 0) -> list[dict[str, Any]]:
        """Rows from `start` on as dicts (for callers that want rows of one study, never on the bulk path)."""
        return [dict(zip(self.names, values)) for values in zip(*(column[start:] for column in self.lists))]

    def truncate(self, length: int) -> None:
        for column in self.lists:
            del column[length:]

    def delete(self, indices: list[int]) -> None:
        for column in self.lists:
            for index in sorted(indices, reverse=True):
                del column[index]

    def arrays(self, start: int = 0, stop: int | None = None) -> list[pa.Array]:
        return [pa.array(column[start:stop] if start or stop is not None else column, type=typ)
                for column, typ in zip(self.lists, self.schema.types)]


def trial_tables() -> dict[str, Columns]:
    """Fresh column buffers of every table a parser fills (all but quarantine)."""
    return {name: Columns(schema) for name, schema in TABLES.items() if name != QUARANTINE_TABLE}


class Buffers:
    """The column buffers of a batch of studies, with the record that owns each row."""

    def __init__(self):
        self.tables = trial_tables()
        self.seqs: list[int] = []  # the committed records, in order
        self.ends: dict[str, list[int]] = {name: [] for name in self.tables}  # rows of each table after each record

    def mark(self) -> dict[str, int]:
        return {name: len(columns) for name, columns in self.tables.items()}

    def rollback(self, mark: dict[str, int]) -> None:
        """Drop every row added since `mark` (a study that failed half-way)."""
        for name, columns in self.tables.items():
            columns.truncate(mark[name])

    def commit(self, seq: int) -> None:
        self.seqs.append(seq)
        for name, columns in self.tables.items():
            self.ends[name].append(len(columns))

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        """Every table's rows as dicts, quarantine included (empty): the shape `parse_study` callers read."""
        out = {name: columns.rows() for name, columns in self.tables.items()}
        out[QUARANTINE_TABLE] = []
        return out

    def to_arrow(self) -> tuple[dict[str, pa.Table], dict[int, str]]:
        """One Arrow table per trial table, each row tagged with its record's `_seq`; and {seq: reason} for the
        records with a value that does not fit its column's type (their unfit rows are left out)."""
        rejected: dict[int, str] = {}
        out = {}
        for name, columns in self.tables.items():
            try:
                arrays = columns.arrays()
                rows_per_record = np.diff(np.array(self.ends[name], np.int64), prepend=0)
                seqs = np.repeat(np.array(self.seqs, np.int64), rows_per_record)
            except _CONVERSION_ERRORS:
                arrays, seqs = self._fitting(name, columns, self._spans(name), rejected)
            schema = columns.schema.append(pa.field(SEQ, pa.int64()))
            out[name] = pa.Table.from_arrays([*arrays, pa.array(seqs, pa.int64())], schema=schema)
        return out, rejected

    def _spans(self, name: str) -> list[tuple[int, int, int]]:
        """(seq, first row, end row) of every committed record in table `name`."""
        spans, start = [], 0
        for seq, end in zip(self.seqs, self.ends[name]):
            spans.append((seq, start, end))
            start = end
        return spans

    @staticmethod
    def _fitting(name: str, columns: Columns, spans: list, rejected: dict[int, str]) -> tuple[list, list]:
        """The rows of the records whose rows convert, one record at a time; the others noted in `rejected`."""
        parts, seqs = [], []
        for seq, start, stop in spans:
            if start == stop:
                continue
            try:
                parts.append(columns.arrays(start, stop))
            except _CONVERSION_ERRORS as exc:
                reason = f"{name} row does not fit the schema ({type(exc).__name__}: {exc})"
                rejected.setdefault(seq, reason[:500])
                continue
            seqs.extend([seq] * (stop - start))
        if not parts:
            return [pa.array([], type=typ) for typ in columns.schema.types], []
        return [pa.concat_arrays([part[i] for part in parts]) for i in range(len(columns.names))], seqs
