"""Evaluation: CT Open loading and official scoring, baseline predictors, and the evaluation report."""
