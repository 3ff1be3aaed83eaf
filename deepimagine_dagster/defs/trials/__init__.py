"""Trials domain: ClinicalTrials.gov source → raw layer → normalised trial tables."""
