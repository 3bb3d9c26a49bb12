"""Shared helpers for the transforms tests (no fixtures here: plain functions)."""
from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from transforms.model import default_model
from transforms.normalize import profile_features


ROOT = Path(__file__).resolve().parents[1]

# The DirectRunner's engine with two worker processes, as a job's command-line options.
TWO_WORKER_PROCESSES = ["--runner", "FnApiRunner", "--direct_running_mode", "multi_processing",
                        "--direct_num_workers", "2"]


def load_benchmark(name: str):
    """A script of ``benchmarks/`` (``name`` without ``.py``) as a module, registered in ``sys.modules``
    under ``profile_dedup_<name>`` (multiprocessing and dataclasses find their functions by module name)."""
    module_name = f"profile_dedup_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def run_diagnostic(script: str, own_args: list[str], profiles: Path, out: Path) -> subprocess.CompletedProcess:
    """Run ``benchmarks/<script>`` (a diagnostic that wraps Beam's runner, so in a child process) with its
    own arguments, over a dry run of ``profiles`` into ``out`` in two worker processes."""
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *own_args, "--",
         "--input", str(profiles), "--output", str(out), *TWO_WORKER_PROCESSES],
        capture_output=True, text=True, cwd=ROOT, timeout=600)


def generated_profiles(directory: Path, n: int, seed: int, bad_lines: int = 0) -> tuple[Path, Path]:
    """``n`` profiles from the project's generator (``benchmarks/generate.py``) and their truth, written
    into ``directory``: ``(profiles.jsonl, truth.csv)``."""
    profiles, truth = directory / "profiles.jsonl", directory / "truth.csv"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "--n", str(n), "--seed", str(seed),
                    "--output", str(profiles), "--truth", str(truth), "--bad_lines", str(bad_lines)],
                   check=True, capture_output=True)
    return profiles, truth


def pid(n: int) -> str:
    """A valid ProfileId (32 lowercase hex digits) from a number."""
    return f"{n:032x}"


# Guards the tests rely on, fixed here so that the tests do not follow every change of
# the shipped DEFAULT_GUARDS (pass default_guards=True to test the shipped ones).
TEST_GUARDS = [
    {"name": "different first names", "when": {"first_name": ["else"]},
     "unless": {"account_number": ["exact"], "birth_date": ["exact", "one typo"]}},
    {"name": "birth dates a generation apart", "when": {"birth_date": ["else"]},
     "unless": {"account_number": ["exact"], "first_name": ["exact", "nickname", "jaro-winkler >= 0.92"],
                "last_name": ["exact", "jaro-winkler >= 0.92"]}},
    {"name": "different genders", "when": {"gender": ["else"]}},
]


def fitted_model(prior: float = 1e-3, model: dict | None = None, default_guards: bool = False) -> dict:
    """The default model with hand-set u values, as if estimated: usable by Scorer.

    Agreement levels get a small u (two random people rarely agree), "else" a
    large one; m keeps the model's seed values. The weights are therefore the
    usual shape: agreement adds, disagreement removes. Guards are TEST_GUARDS
    unless ``default_guards``.
    """
    model = copy.deepcopy(model or default_model())
    if not default_guards:
        model["guards"] = copy.deepcopy(TEST_GUARDS)
    for comparison in model["comparisons"]:
        for index, level in enumerate(comparison["levels"]):
            if index == 0:
                continue
            if level["kind"] == "else":
                level["u"] = 0.9
            elif level["kind"] == "neither":
                level["u"] = level["m"]  # nothing to compare on either side: no evidence
            elif level["label"] in ("exact", "same number", "same address", "postcode and street"):
                level["u"] = 0.01
            else:
                level["u"] = 0.05
    model["prior"] = prior
    return model


def features(profile: dict, region: str = "US", identifiers: tuple[str, ...] = ()) -> dict:
    return profile_features(profile, region, identifiers)


def member(profile: dict, identifiers: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """(profile, features) as resolve_component takes its members."""
    return profile, profile_features(profile, "US", identifiers)


def collect_to(path):
    """An ``assert_that`` matcher that writes the PCollection's elements to a JSON file,
    so a test can make several assertions on them after the pipeline has run."""
    path = str(path)

    def matcher(actual):
        with open(path, "w") as handle:
            json.dump(list(actual), handle, default=list)

    return matcher
