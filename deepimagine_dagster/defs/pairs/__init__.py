"""Pairs domain: trial tables → temporal split → historical questions, natural and approximate pairs, retrieval index,
Hugging Face dataset export (job `build_pairs`)."""
