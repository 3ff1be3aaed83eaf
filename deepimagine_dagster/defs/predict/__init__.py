"""Ask domain: predictions for one planned trial (an NCT id, a v2 JSON registration or a YAML draft), job `predict_trial`."""
