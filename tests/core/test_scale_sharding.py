"""Data-parallel generation and idempotent trace merging: shares and GPU groups, the backend sizes taken from config,
traces from a data-parallel backend, merges that never duplicate a trace, and real replica processes on CPU."""

from __future__ import annotations

import pyarrow as pa
import pytest

from deepimagine_core.llm import tiny
from deepimagine_core.llm.backend_factory import make_backend
from deepimagine_core.llm.backends import SamplingParams, TransformersBackend, VLLMBackend
from deepimagine_core.llm.sharding import ShardedBackend, device_groups, shard
from tests.scripted_backend import ScriptedBackend
from deepimagine_core.llm.pair_text import pair_view
from deepimagine_core.llm.traces import TRACES_SCHEMA, merge_traces, trace_pairs
from deepimagine_core.training.data import synthetic_pair


@pytest.mark.parametrize("n_items, n_shards", [(0, 3), (1, 3), (7, 3), (8, 2), (5, 5), (3, 8)])
def test_shares_are_contiguous_balanced_and_complete(n_items, n_shards):
    items = list(range(n_items))
    shares = [shard(items, n_shards, i) for i in range(n_shards)]
    assert sum(shares, []) == items
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    with pytest.raises(ValueError, match="need 0 <= index < num_shards"):
        shard(items, n_shards, n_shards)


def test_each_replica_gets_its_own_consecutive_gpus():
    gpus = [str(i) for i in range(8)]
    assert device_groups(4, 2, gpus) == ["0,1", "2,3", "4,5", "6,7"]
    assert device_groups(2, 1, ["3", "5", "7"]) == ["3", "5"]  # CUDA_VISIBLE_DEVICES ids kept as given
    assert device_groups(2, 4, []) == [None, None]  # no GPU: CPU replicas
    with pytest.raises(ValueError, match="= 12 GPUs, but only 8 are visible"):
        device_groups(3, 4, gpus)


def test_vllm_sizes_come_from_config_or_the_environment(monkeypatch):
    from deepimagine_dagster import resources

    monkeypatch.setenv(resources.ENV_VLLM_TENSOR_PARALLEL, "2")
    llm = resources.default_resources()["llm"]
    assert llm.vllm_tensor_parallel_size == 2 and llm.vllm_data_parallel_size == 1
    engine = make_backend("vllm", "org/model", device="cuda", batch_size=4,  # no engine is built until generate
                          vllm_tensor_parallel_size=llm.vllm_tensor_parallel_size)
    assert isinstance(engine, VLLMBackend) and engine.engine_kwargs["tensor_parallel_size"] == 2
    assert make_backend("vllm", "org/model", tensor_parallel_size=4).engine_kwargs["tensor_parallel_size"] == 4
    assert make_backend("vllm", "org/model").engine_kwargs["tensor_parallel_size"] == 1
    monkeypatch.setenv(resources.ENV_VLLM_DATA_PARALLEL, "4")
    llm = resources.default_resources()["llm"]
    replicas = make_backend("vllm", "org/model", gpus=[str(i) for i in range(8)],
                            vllm_tensor_parallel_size=llm.vllm_tensor_parallel_size,
                            vllm_data_parallel_size=llm.vllm_data_parallel_size)
    assert isinstance(replicas, ShardedBackend) and replicas.model_id == "org/model"
    assert replicas.devices == ["0,1", "2,3", "4,5", "6,7"] and replicas.backend_kwargs["tensor_parallel_size"] == 2
    assert not isinstance(make_backend("transformers", "org/model", vllm_data_parallel_size=4), ShardedBackend)
    monkeypatch.setenv(resources.ENV_VLLM_DATA_PARALLEL, "two")
    with pytest.raises(ValueError, match="DEEPIMAGINE_VLLM_DATA_PARALLEL_SIZE='two'"):
        resources.default_resources()
    with pytest.raises(ValueError, match="tensor_parallel_size needs the vllm backend"):
        ShardedBackend("transformers", "org/model", data_parallel_size=2, tensor_parallel_size=2)


class ParallelScripted(ScriptedBackend):
    data_parallel_size = 2


def test_traces_feed_each_replica_a_full_chunk_and_merging_never_duplicates():
    pairs = [pair_view(synthetic_pair(i)) for i in range(5)]
    backend = ParallelScripted(lambda messages, i: "because\nDIRECTION: down\nSIZE: moderate")
    params = SamplingParams(temperature=0.7, max_new_tokens=16)
    new = trace_pairs(pairs, backend, 2, params, chunk_pairs=2)
    assert [len(c["messages_batch"]) for c in backend.calls] == [4, 1]  # 2 pairs per replica per call
    assert new.num_rows == 10 and len(set(new["trace_id"].to_pylist())) == 10

    merged, dropped = merge_traces(TRACES_SCHEMA.empty_table(), new)
    assert (merged.num_rows, dropped) == (10, 0)
    again, dropped = merge_traces(merged, new)  # a re-run, or two workers' overlapping outputs
    assert (again.num_rows, dropped) == (10, 10) and again.equals(merged)
    overlap, dropped = merge_traces(merged, pa.concat_tables([new.slice(8), trace_pairs(
        [pair_view(synthetic_pair(9))], backend, 2, params)]))
    assert (overlap.num_rows, dropped) == (12, 2)  # only the two traces of the new pair are added
    other = trace_pairs(pairs[:1], ScriptedBackend(lambda m, i: "DIRECTION: up", model_id="other"), 2, params)
    assert merge_traces(merged, other)[0].num_rows == 12  # another teacher's traces of the same pair are kept


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_cpu_replicas_answer_like_one_backend_and_report_failures(tmp_path_factory):
    model = str(tiny.build_tiny_model(tmp_path_factory.getbasetemp() / "llm_tiny_model"))
    batch = [[{"role": "user", "content": f"arm {i}: dose 10 mg then 20 mg"}] for i in range(5)]
    greedy = SamplingParams(temperature=0, max_new_tokens=6, n=2)
    with make_backend("transformers", model, data_parallel_size=2, batch_size=1) as replicas:
        answers = replicas.generate(batch, greedy)
        expected = TransformersBackend(model, batch_size=1).generate(batch, greedy)
        assert [[g.text for g in gens] for gens in answers] == [[g.text for g in gens] for gens in expected]
        assert [len(gens) for gens in answers] == [2] * 5
        with pytest.raises(RuntimeError, match="(?s)replica 0 .*Traceback.*no-such-adapter"):
            replicas.generate(batch, greedy, adapter="/no-such-adapter")  # the replica's own traceback, here
        assert replicas._workers == []  # stopped after the failure (they start again on the next call)
