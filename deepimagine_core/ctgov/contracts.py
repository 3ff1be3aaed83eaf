"""Data-contract checks over the trial tables, as plain functions (the Dagster asset checks call these)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def duplicate_keys(table: pa.Table, key: tuple[str, ...] | list[str]) -> int:
    """How many key values occur more than once."""
    if table.num_rows == 0:
        return 0
    counts = table.group_by(list(key), use_threads=False).aggregate([([], "count_all")])
    return int(pc.sum(pc.greater(counts.column("count_all"), 1)).as_py() or 0)


def orphan_rows(child: pa.Table, trials: pa.Table) -> int:
    """Rows of a child table whose nct_id is not in trials."""
    if child.num_rows == 0:
        return 0
    present = pc.is_in(child.column("nct_id"), value_set=trials.column("nct_id").combine_chunks())
    return int(child.num_rows - (pc.sum(present).as_py() or 0))


def p_values_out_of_range(analyses: pa.Table) -> int:
    p = analyses.column("p_value")
    bad = pc.or_(pc.less(p, 0.0), pc.greater(p, 1.0))
    return int(pc.sum(pc.fill_null(bad, False)).as_py() or 0)


def quarantine_rate(quarantine: pa.Table, trials: pa.Table) -> tuple[float, int, int]:
    """(rate, record-level quarantined, studies read ≈ trials + quarantined)."""
    quarantined = int(pc.sum(pc.equal(quarantine.column("level"), "record")).as_py() or 0)
    read = trials.num_rows + quarantined
    return (quarantined / read if read else 0.0), quarantined, read
