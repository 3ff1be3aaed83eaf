"""ClinicalTrials.gov sources, parsing and normalised Arrow tables."""
