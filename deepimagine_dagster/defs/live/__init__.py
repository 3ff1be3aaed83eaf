"""Live domain: predictor snapshots with a training cutoff, prospective questions, the benchmark history."""
