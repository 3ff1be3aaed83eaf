"""Training domain: the fine-tuned counterfactual operators (SFT) and the GRPO policy, with their checks and job."""
