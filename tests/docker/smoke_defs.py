"""Test-only code location for the Docker executor test: three tiny assets, a then b and c side by side.

Each step writes a one-row probe table into the shared store saying where it ran (hostname, whether `/.dockerenv`
exists, its uid) and how many probe rows it could read from its upstream step, so the test can prove that every step
ran in its own container and that each container saw what the previous ones wrote. The job's executor is
`gpu_executor()` itself, configured by the test through the same environment variables a deployment uses.
"""

import os
import socket

import dagster as dg
import pyarrow as pa

from deepimagine_dagster.executors import gpu_executor
from deepimagine_dagster.resources import StoreResource

PROBE_SCHEMA = pa.schema(
    [("step", pa.string()), ("hostname", pa.string()), ("in_container", pa.bool_()), ("uid", pa.int64()),
     ("upstream_rows", pa.int64())]
)


def write_probe(store: StoreResource, step: str, upstream: tuple[str, ...] = ()) -> dg.MaterializeResult:
    s = store.get()
    upstream_rows = sum(s.read_table(f"docker_probe_{name}").num_rows for name in upstream)
    row = {"step": step, "hostname": socket.gethostname(), "in_container": os.path.exists("/.dockerenv"),
           "uid": os.getuid(), "upstream_rows": upstream_rows}
    path = s.write_table(f"docker_probe_{step}", pa.Table.from_pylist([row], schema=PROBE_SCHEMA))
    return dg.MaterializeResult(metadata={**row, "path": str(path)})


@dg.asset
def docker_probe_a(store: StoreResource) -> dg.MaterializeResult:
    return write_probe(store, "a")


@dg.asset(deps=[docker_probe_a])
def docker_probe_b(store: StoreResource) -> dg.MaterializeResult:
    return write_probe(store, "b", ("a",))


@dg.asset(deps=[docker_probe_a])
def docker_probe_c(store: StoreResource) -> dg.MaterializeResult:
    return write_probe(store, "c", ("a",))


docker_smoke = dg.define_asset_job("docker_smoke", selection=dg.AssetSelection.all(), executor_def=gpu_executor())

defs = dg.Definitions(
    assets=[docker_probe_a, docker_probe_b, docker_probe_c],
    jobs=[docker_smoke],
    resources={"store": StoreResource(home=os.environ.get("DEEPIMAGINE_HOME", ""))},
)
