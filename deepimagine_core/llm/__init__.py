"""LLM side of DeepImagine: inference backends, the tiny local model, prompts, answer parsing, verified reasoning
traces, the stepwise imagination pathway and the LLM predictors. Heavy libraries (torch, transformers, peft, vllm)
are imported inside functions, so importing this package is cheap."""
