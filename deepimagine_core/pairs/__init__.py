"""DeepImagine pairs."""
