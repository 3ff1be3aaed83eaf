"""DeepImagine evaluation."""
