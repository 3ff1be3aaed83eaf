"""Raw studies and the normalised trial tables. Thin: the work is in deepimagine_core.ctgov.ingest."""


from contextlib import contextmanager

import dagster as dg

from deepimagine_core.ctgov.api import ApiSettings
from deepimagine_core.ctgov.ingest import fetch_raw, ingest_source
from deepimagine_core.ctgov.records import SourceError
from deepimagine_core.ctgov.schemas import TABLES
from deepimagine_core.tables import QUARANTINE_TABLE, TRIALS_TABLE
from deepimagine_dagster.metadata import table_metadata
from deepimagine_dagster.resources import StoreResource, TrialSourceResource

GROUP = "trials"
TABLE_KEYS = [dg.AssetKey(name) for name in TABLES]


def api_settings(source: TrialSourceResource) -> ApiSettings:
    return ApiSettings(
        base_url=source.api_base_url,
        page_size=source.page_size,
        requests_per_second=source.requests_per_second,
        timeout_seconds=source.timeout_seconds,
        max_retries=source.max_retries,
        condition=source.condition,
        intervention=source.intervention,
        max_studies=source.max_studies,
    )


@contextmanager
def source_failure():
    """A bad trial source fails the step with its one-line message (no traceback of the readers)."""
    try:
        yield
    except SourceError as err:
        raise dg.Failure(description=str(err), allow_retries=False) from None


@dg.asset(group_name=GROUP, kinds={"python"})
def raw_studies(context: dg.AssetExecutionContext, store: StoreResource, trial_source: TrialSourceResource):
    """The raw layer: for the API, new pages downloaded into `raw/api` (resumable, incremental by last-update date);
    for the embedded sample or a local archive, the files themselves (checked and described here)."""
    pages = 0

    def progress(*_args, **_kwargs):
        nonlocal pages
        pages += 1
        if pages % 10 == 0:
            context.log.info(f"fetched {pages} pages")

    with source_failure():
        info = fetch_raw(trial_source.source, store.get(), api_settings(trial_source), progress=progress)
    context.log.info(f"raw layer ready: {info}")
    return dg.MaterializeResult(metadata={k: _meta(v) for k, v in info.items()})


@dg.multi_asset(
    group_name=GROUP,
    specs=[
        dg.AssetSpec(key, group_name=GROUP, deps=[raw_studies], kinds={"parquet"},
                     description=TABLES[key.path[-1]].metadata[b"doc"].decode())
        for key in TABLE_KEYS
    ],
)
def trial_tables(context: dg.AssetExecutionContext, store: StoreResource, trial_source: TrialSourceResource):
    """Parse every raw study into the normalised tables (see deepimagine_core/ctgov/schemas.py)."""
    st = store.get()
    context.log.info(f"ingesting trial source {trial_source.source!r} into {st.path('tables')}")
    with source_failure():
        summary = ingest_source(trial_source.source, st, progress=True, allow_partial=trial_source.allow_partial,
                                parse=trial_source.parse_settings())
    stats = summary.as_dict()
    context.log.info(
        f"ingest: {summary.studies_read} studies read → {summary.trials} trials, {summary.quarantined} quarantined, "
        f"{summary.duplicates_dropped} duplicates dropped (newest kept), {summary.field_issues} values dropped; "
        f"{stats['studies_per_second']} studies/s"
    )
    for stop in summary.stopped_early:
        context.log.warning(f"partial read published (allow_partial): {stop}")
    if not summary.reconciles:
        raise dg.Failure(f"ingest counts do not reconcile: {stats}")
    for name in TABLES:
        metadata = {**table_metadata(st, name), **_extra_metadata(name, stats)}
        yield dg.MaterializeResult(asset_key=name, metadata=metadata)


def _extra_metadata(name: str, stats: dict) -> dict:
    """The ingest figures shown on `trials` and `quarantine`."""
    if name == TRIALS_TABLE:
        keep = ("studies_read", "quarantined", "duplicates_dropped", "studies_per_second")
        return {**{k: stats[k] for k in keep}, "stopped_early": dg.MetadataValue.json(stats["stopped_early"])}
    if name == QUARANTINE_TABLE:
        return {
            "quarantine_rate": stats["quarantine_rate"],
            "record_level": stats["quarantined"],
            "field_level": stats["field_issues"],
            "reasons": dg.MetadataValue.json(stats["quarantine_reasons"]),
        }
    return {}


def _meta(value):
    if isinstance(value, (dict, list)):
        return dg.MetadataValue.json(value)
    return value
