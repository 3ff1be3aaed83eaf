"""Benchmarks: `python -m bench [--quick] [--out DIR]`. Every figure is a ratio to a floor or peer measured in the same run."""
