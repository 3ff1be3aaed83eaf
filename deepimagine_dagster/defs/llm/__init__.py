"""LLM domain: verified reasoning traces (asset `reasoning_traces`, job `generate_traces`)."""
