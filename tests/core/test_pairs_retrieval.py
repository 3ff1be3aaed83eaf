"""TextIndex: the obvious neighbour is found, self-exclusion, fields/views, save/load, embedding backend."""

import numpy as np
import pytest
import scipy.sparse as sp

from deepimagine_core.pairs.retrieval import TextIndex, top_k_rows

DOCS = {
    "NCT1": "Metformin in type 2 diabetes mellitus, HbA1c and fasting glucose",
    "NCT2": "Sitagliptin added to metformin in type 2 diabetes, HbA1c",
    "NCT3": "Atorvastatin for hypercholesterolemia, LDL cholesterol lowering",
    "NCT4": "Rosuvastatin versus atorvastatin, LDL cholesterol in hypercholesterolemia",
    "NCT5": "Inhaled budesonide in persistent asthma, FEV1",
}


@pytest.fixture
def index():
    return TextIndex().fit(list(DOCS), list(DOCS.values()))


def test_obvious_neighbour_first(index):
    hits = index.search(["rosuvastatin LDL cholesterol", "asthma inhaled corticosteroid FEV1"], k=2)
    assert hits[0][0][0] == "NCT4" and hits[1][0][0] == "NCT5"
    assert all(0 < score <= 1.0 + 1e-6 for row in hits for _, score in row)
    assert hits[0][0][1] >= hits[0][-1][1]  # best first


def test_exclude_ids_and_self_neighbours(index):
    hits = index.search([DOCS["NCT3"]], k=2, exclude_ids=["NCT3"])[0]
    assert hits[0][0] == "NCT4" and "NCT3" not in [i for i, _ in hits]
    cols, scores = index.neighbours(k=1)
    assert [index.ids[c] for c in cols[:4, 0]] == ["NCT2", "NCT1", "NCT4", "NCT3"]
    assert all(cols[i, 0] != i for i in range(len(DOCS))) and scores[0, 0] > 0


def test_no_match_returns_fewer_hits(index):
    assert index.search(["zzzz qqqq"], k=3) == [[]]


def test_fields_views_and_persistence(tmp_path):
    docs = [{"interventions": "metformin", "conditions": "type 2 diabetes"},
            {"interventions": "metformin", "conditions": "polycystic ovary syndrome"},
            {"interventions": "insulin glargine", "conditions": "type 2 diabetes"}]
    index = TextIndex(field_weights={"conditions": 2.0}).fit(["A", "B", "C"], docs)
    by_drug, _ = index.neighbours(k=1, fields=["interventions"])
    by_condition, _ = index.neighbours(k=1, fields=["conditions"])
    assert index.ids[by_drug[0, 0]] == "B" and index.ids[by_condition[0, 0]] == "C"
    with pytest.raises(KeyError):
        index.neighbours(k=1, fields=["eligibility"])
    loaded = TextIndex.load(index.save(tmp_path / "ix"))
    assert loaded.ids == index.ids and loaded.field_weights == {"conditions": 2.0}
    assert loaded.search([{"interventions": "insulin", "conditions": "diabetes"}], k=1)[0][0][0] == "C"


def test_exact_search_without_pruning_matches_brute_force():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    texts = [" ".join(rng.choice(words, 12)) for _ in range(60)]
    index = TextIndex(max_query_terms=0, max_postings=0, min_score=0.0).fit([str(i) for i in range(60)], texts)
    cols, _ = index.neighbours(k=3)
    dense = (index._documents(tuple(index.fields)) @ index._documents(tuple(index.fields)).T).toarray()
    np.fill_diagonal(dense, -1)
    assert np.allclose(np.sort(dense, axis=1)[:, -1], dense[np.arange(60), cols[:, 0]])


def test_embedding_backend_with_a_callable(tmp_path):
    vocab = ["diabetes", "statin", "asthma"]

    def embed(texts):
        return np.array([[t.lower().count(w) for w in vocab] for t in texts], float)

    index = TextIndex("embedding", embed=embed).fit(["a", "b", "c"], ["diabetes diabetes", "statin", "asthma"])
    assert index.search(["a statin trial"], k=1) == [[("b", pytest.approx(1.0))]]
    loaded = TextIndex.load(index.save(tmp_path / "emb"), embed=embed)
    assert loaded.search(["asthma"], k=1)[0][0][0] == "c"
    with pytest.raises(ValueError):
        TextIndex("embedding")


def test_top_k_rows_sparse_and_dense():
    m = sp.csr_matrix(np.array([[0.0, 0.9, 0.1], [0.0, 0.0, 0.0], [0.5, 0.0, 0.7]], np.float32))
    cols, vals = top_k_rows(m, 2)
    assert cols.tolist() == [[1, 2], [-1, -1], [2, 0]]
    cols, _ = top_k_rows(m.toarray(), 1)
    assert cols[:, 0].tolist()[0] == 1 and cols[2, 0] == 2
