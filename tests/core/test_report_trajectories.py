"""Trajectory text in report.md is collapsed: whitespace-normalised, cut short, and linked to the full JSONL."""

import json

from deepimagine_core.evaluation.report import TRAJECTORY_CHARS, render_html, render_markdown, trajectory_blocks


def test_raw_model_output_is_collapsed_and_linked(tmp_path):
    reports = tmp_path / "reports"
    path = reports / "trajectories" / "historical_test" / "deepimagine.jsonl"
    path.parent.mkdir(parents=True)
    noisy = "Answer:\n\n\n\n   option   1\n\n" + "\n\n word " * 400  # tiny-model output: mostly blank lines
    records = [{"nct_id": f"NCT{i:08d}", "question_index": 0, "probabilities": [0.5, 0.5], "text": noisy,
                "trajectory": [{"factor": "arm", "output": noisy}]} for i in range(5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))

    blocks = trajectory_blocks(path, reports)
    md = render_markdown(blocks, reports)
    assert "\n\n\n" not in md and md.count("final output:") == 3  # 3 shown of 5
    final = next(line for line in md.splitlines() if "final output:" in line)
    assert final.split("final output: ", 1)[1].startswith("Answer: option 1 word word")
    assert len(final) < TRAJECTORY_CHARS + 80 and "characters)" in final
    assert "[trajectories/historical_test/deepimagine.jsonl](trajectories/historical_test/deepimagine.jsonl)" in md
    assert len(md.splitlines()) < 30
    assert '<a href="trajectories/historical_test/deepimagine.jsonl">' in render_html(blocks, reports)


def test_blank_model_output_says_so(tmp_path):
    path = tmp_path / "trajectories" / "b" / "p.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"nct_id": "NCT1", "question_index": 0, "probabilities": [1, 0], "text": "\n\n \n"}))
    assert "final output: (whitespace only: 4 characters)" in render_markdown(trajectory_blocks(path, tmp_path), tmp_path)
