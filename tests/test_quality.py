"""Match quality on the public labelled sets, with default settings: a floor that guards regressions.

The numbers quoted in the README and the issue notes come from the same commands
(`python -m pipeline.datasets ...`, `profile-dedup ...`, `python -m pipeline.evaluate ...`).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAKE1000 = ROOT.parent / "shared" / "datasets" / "splink_fake_1000.csv"


def _scores(tmp: Path, dataset: str) -> dict:
    data = tmp / dataset
    if dataset == "sample":  # the bundled sample: generated households, twins, namesakes
        profiles, truth = ROOT / "examples" / "sample_profiles.jsonl", ROOT / "examples" / "sample_truth.csv"
    else:
        convert = [sys.executable, "-m", "pipeline.datasets", dataset, "--output", str(data)]
        if dataset == "fake1000":
            assert FAKE1000.exists(), f"labelled data missing: {FAKE1000}"
            convert += ["--input", str(FAKE1000)]
        subprocess.run(convert, check=True, capture_output=True, cwd=ROOT)
        profiles, truth = data / "profiles.jsonl", data / "truth.csv"
    run = subprocess.run([sys.executable, "-m", "pipeline", "--input", str(profiles),
                          "--output", str(data / "out"), "--runner", "FnApiRunner"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    evaluation = subprocess.run([sys.executable, "-m", "pipeline.evaluate", "--plan",
                                 str(data / "out" / "merge_plan.jsonl"), "--truth", str(truth)],
                                capture_output=True, text=True, check=True, cwd=ROOT)
    last = evaluation.stdout.strip().splitlines()[-1]
    return {key: float(value) for key, value in (part.split("=") for part in last.split())}


@pytest.mark.parametrize("dataset, min_precision, min_f1", [
    ("fake1000", 0.98, 0.90),
    ("febrl3", 0.999, 0.985),
    ("sample", 0.99, 0.92),
])
def test_quality_floor_with_default_settings(tmp_path, dataset, min_precision, min_f1):
    scores = _scores(tmp_path, dataset)
    assert scores["precision"] >= min_precision, scores
    assert scores["F1"] >= min_f1, scores
