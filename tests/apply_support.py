"""Plain helpers shared by the apply tests (test_sink.py, test_apply.py); no fixtures here."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "demo"


def pid(n: int) -> str:
    return f"{n:032x}"


def set_aws_env(monkeypatch) -> None:
    """Credentials and Region for boto3's standard chain, and nothing from the machine's
    own AWS configuration."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def write_jsonl(path: Path, records) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def pair_plan(n: int, domain: str = DOMAIN, ids_per_request: int = 1) -> tuple[list[dict], list[dict]]:
    """``n`` requests, each merging ``ids_per_request`` fresh profiles into a fresh main;
    returns (profiles, plan)."""
    step = ids_per_request + 1
    profiles = [{"ProfileId": pid(i), "FirstName": f"p{i}"} for i in range(n * step)]
    plan = [{"DomainName": domain, "MainProfileId": pid(step * i),
             "ProfileIdsToBeMerged": [pid(step * i + k) for k in range(1, step)]} for i in range(n)]
    return profiles, plan


@contextlib.contextmanager
def emulator_process(profiles_path: Path, **faults):
    """``python -m emulator`` in a subprocess (its own GIL and scheduling); yields its URL."""
    argv = [sys.executable, "-m", "emulator", "--profiles", str(profiles_path), "--domain", DOMAIN]
    for name, value in faults.items():
        argv += [f"--{name}", str(value)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "listening on" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        yield line.split()[-1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def emulator_stats(url: str) -> dict:
    with urllib.request.urlopen(url + "/_emulator/stats") as answer:
        return json.load(answer)


def emulator_dump(url: str, domain: str = DOMAIN) -> dict:
    with urllib.request.urlopen(f"{url}/_emulator/profiles/{domain}") as answer:
        return json.load(answer)


def apply_argv(plan: Path, out: Path, url: str, *extra: str, rate: float = 200.0) -> list[str]:
    return ["--from_plan", str(plan), "--apply", "--output", str(out), "--domain_name", DOMAIN,
            "--endpoint_url", url, "--max_merges_per_second", str(rate), "--runner", "FnApiRunner", *extra]


def run_apply_argv(argv: list[str]) -> dict:
    """``pipeline.apply.run_apply`` with options parsed the way the CLI parses them."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.apply import run_apply
    from pipeline.options import ProfileDedupOptions

    options = PipelineOptions(argv)
    job = options.view_as(ProfileDedupOptions)
    job.check()
    return run_apply(options, job, job.from_plan)


def peak_in_window(times, window: float = 1.0) -> int:
    """Most events in any window (t - window, t], as the emulator counts them."""
    import bisect

    times = sorted(times)
    return max((bisect.bisect_right(times, t) - bisect.bisect_right(times, t - window) for t in times), default=0)
