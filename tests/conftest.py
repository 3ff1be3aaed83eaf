"""Shared fixtures. Tests never touch the network (only 127.0.0.1) and never write to ~/.deepimagine. Only the ingest
equivalence test reads ../shared (the 3,000-study sample), and it skips where a clone has none."""

import os

import pytest

# Offline for every test: nothing may download weights or data.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    """Point DEEPIMAGINE_HOME at a session temp folder unless a test sets its own."""
    home = tmp_path_factory.mktemp("deepimagine_home")
    old = os.environ.get("DEEPIMAGINE_HOME")
    os.environ["DEEPIMAGINE_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("DEEPIMAGINE_HOME", None)
    else:
        os.environ["DEEPIMAGINE_HOME"] = old


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory):
    """A Store whose trial tables were built from the embedded sample (read-only for tests: copy before mutating)."""
    from deepimagine_core.ctgov.ingest import ingest_source
    from deepimagine_core.store import Store

    store = Store(tmp_path_factory.mktemp("sample_store"))
    summary = ingest_source("sample", store)
    assert summary.trials > 300, summary.as_dict()
    return store
