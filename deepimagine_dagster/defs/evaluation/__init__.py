"""Evaluation domain: the CT Open benchmark asset, the evaluation report asset and the `evaluate` job."""
