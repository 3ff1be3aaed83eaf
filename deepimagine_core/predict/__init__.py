"""Ask about a planned trial: the standard CT Open questions for one registration or draft, answered by the reference
predictor (and the LLM pathway when its operators are published), with a report.

    from deepimagine_core.predict import load_design, predict_trial, write_prediction_report
    design = load_design("NCT01234567", store)     # or a v2 JSON registration, or a YAML draft
    files = write_prediction_report(store, predict_trial(design, store))

From the shell: `python -m deepimagine_core.predict NCT01234567` (see `__main__`). Sits above every core layer.
"""

from deepimagine_core.predict.design import DesignError, TrialDesign, strip_results
from deepimagine_core.predict.questions import design_questions
from deepimagine_core.predict.report import ask, compact_table, write_prediction_report
from deepimagine_core.predict.run import PredictSettings, PredictionResult, predict_trial, reference_predictor
from deepimagine_core.predict.sources import load_design

__all__ = ["ask", "DesignError", "TrialDesign", "strip_results", "design_questions", "load_design", "PredictSettings",
           "PredictionResult", "predict_trial", "reference_predictor", "write_prediction_report", "compact_table"]
