"""DeepImagine core library: trial data, questions and pairs, LLM inference, training, evaluation.

Never imports dagster; every function is usable from a notebook.
"""

__version__ = "0.1.0"
