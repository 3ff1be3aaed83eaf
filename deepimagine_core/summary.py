"""What a run left in the store, in a dozen lines: tables and their row counts, adapters, the report and its headline
figures. The main job ends with it (asset `run_summary`), on the console and in the UI.

    print(summarize_store(store, adapters).text())

A bottom-layer module: it reads files only (Parquet footers, `reports/evaluation.json`); what a higher layer knows
(the published adapters) is passed in by the caller.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from deepimagine_core.store import Store

__all__ = ["StoreSummary", "summarize_store"]

HEADLINE_PREDICTORS = 3  # best predictors shown per benchmark (plus majority and deepimagine when present)
MAX_EMPTY_PARTS = 12  # reasons shown on the console (all of them in the markdown)


@dataclass
class StoreSummary:
    root: Path
    tables: dict[str, int] = field(default_factory=dict)  # table -> rows
    adapters: dict[str, str] = field(default_factory=dict)  # adapter name -> folder
    report: Path | None = None  # report.md, when written
    headline: dict[str, dict[str, dict]] = field(default_factory=dict)  # benchmark -> predictor -> {wa, interval, n}
    notes: list[str] = field(default_factory=list)
    empty_parts: dict[str, str] = field(default_factory=dict)  # "asset[/part]" -> why it is empty or was skipped

    def lines(self) -> list[str]:
        out = [f"DeepImagine store {self.root}"]
        tables = ", ".join(f"{name} {rows:,}" for name, rows in self.tables.items())
        out += textwrap.wrap(f"tables ({len(self.tables)}, rows): {tables or 'none'}", 110, subsequent_indent="  ")
        folders = {str(Path(p).parent.parent) for p in self.adapters.values()}
        where = f" in {folders.pop()}/<name>/adapter" if len(folders) == 1 else ""
        out.append(f"adapters{where}: {', '.join(self.adapters) or 'none published'}")
        out.append(f"report: {self.report or 'not written'}")
        for bench, scores in self.headline.items():
            figures = "; ".join(f"{p} {s['weighted_accuracy']:.3f}{_interval(s)}" for p, s in scores.items())
            n = max((s["n_questions"] for s in scores.values()), default=0)
            out += textwrap.wrap(f"{bench} ({n} questions), weighted accuracy: {figures}", 110, initial_indent="  ",
                                 subsequent_indent="    ")
        out += [f"  note: {note}" for note in self.notes]
        if self.empty_parts:
            out.append("empty or skipped, and why:")
            shown = list(self.empty_parts.items())[:MAX_EMPTY_PARTS]
            out += [f"  {part}: {why}" for part, why in shown]
            if len(self.empty_parts) > len(shown):
                out.append(f"  (+{len(self.empty_parts) - len(shown)} more in the assets' metadata)")
        return out

    def text(self) -> str:
        return "\n".join(self.lines())

    def markdown(self) -> str:
        rows = "\n".join(f"| {name} | {rows:,} |" for name, rows in self.tables.items())
        parts = [f"**Store** `{self.root}`", "| table | rows |\n|---|---|\n" + rows if rows else "_(no tables)_",
                 "**Adapters**: " + (", ".join(f"`{n}`" for n in self.adapters) or "none published"),
                 f"**Report**: `{self.report}`" if self.report else "**Report**: not written"]
        for bench, scores in self.headline.items():
            parts.append(f"**{bench}** weighted accuracy: " + "; ".join(
                f"{p} {s['weighted_accuracy']:.3f}{_interval(s)}" for p, s in scores.items()))
        parts += [f"_{note}_" for note in self.notes]
        if self.empty_parts:
            parts.append("**Empty or skipped, and why**\n\n" + "\n".join(
                f"- `{part}`: {why}" for part, why in self.empty_parts.items()))
        return "\n\n".join(parts)


def _interval(scores: Mapping) -> str:
    lo_hi = scores.get("interval")
    return f" [{lo_hi[0]:.2f}, {lo_hi[1]:.2f}]" if lo_hi and None not in lo_hi else ""


def table_rows(store: Store) -> dict[str, int]:
    """Row count of every table under `<store>/tables/` (read from the Parquet footers: cheap)."""
    folder = store.path("tables")
    if not folder.is_dir():
        return {}
    return {p.stem: pq.ParquetFile(p).metadata.num_rows for p in sorted(folder.glob("*.parquet")) if p.is_file()}


def headline_figures(evaluation: Mapping[str, Mapping[str, Mapping]]) -> dict[str, dict[str, dict]]:
    """Per benchmark: the best predictors by weighted accuracy, plus `majority` and `deepimagine*` when scored."""
    out = {}
    for bench, runs in evaluation.items():
        flat = {p: {"weighted_accuracy": float(s["overall"]["weighted_accuracy"]),
                    "interval": (s.get("intervals") or {}).get("weighted_accuracy"),
                    "n_questions": int(s.get("n_questions") or 0)} for p, s in runs.items()}
        best = sorted(flat, key=lambda p: -flat[p]["weighted_accuracy"])[:HEADLINE_PREDICTORS]
        shown = best + [p for p in flat if p not in best and (p == "majority" or p.startswith("deepimagine"))]
        out[bench] = {p: flat[p] for p in shown}
    return out


def summarize_store(store: Store, adapters: Mapping[str, str | Path] | None = None,
                    empty_parts: Mapping[str, str] | None = None) -> StoreSummary:
    """The summary of `store`; `adapters` (name -> folder) and `empty_parts` ("asset[/part]" -> reason, e.g. from the
    assets' `why_empty`/`skipped` metadata) come from the caller."""
    summary = StoreSummary(root=store.root, tables=table_rows(store),
                           adapters={n: str(p) for n, p in sorted((adapters or {}).items())},
                           empty_parts=dict(empty_parts or {}))
    report = store.path("reports", "report.md")
    summary.report = report if report.is_file() else None
    evaluation = store.path("reports", "evaluation.json")
    if evaluation.is_file():
        summary.headline = headline_figures(json.loads(evaluation.read_text(encoding="utf-8")))
        if not summary.headline:
            summary.notes.append("the report scored nothing: its 'Nothing evaluated' section says why")
    empty = [name for name, rows in summary.tables.items() if rows == 0]
    if empty:
        summary.notes.append(f"empty tables: {', '.join(empty)}")
    return summary
