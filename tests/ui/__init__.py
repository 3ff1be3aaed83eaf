"""End-to-end tests of the Dagster UI: the real webserver (GraphQL) and a real browser. Marker: `ui`."""

SAMPLE_STUDIES = 348  # the embedded sample: 98 API v2 JSON + 250 legacy XML studies
REPORT_ASSET = "evaluation_report"  # the evaluation domain's report (markdown in its materialisation metadata)
