"""DeepImagine training."""
