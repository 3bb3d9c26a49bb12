"""s3:// inputs and outputs, end to end, against a local S3 endpoint (moto's server, which speaks
the S3 REST protocol): the job reads its export from a bucket and writes every output there, with
credentials from boto3's standard chain (environment variables here) and the endpoint from Beam's
``--s3_endpoint_url``."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_profiles.jsonl"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1")
    client.create_bucket(Bucket="exports")
    yield url, client
    server.stop()


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **CREDENTIALS}
    result = subprocess.run([sys.executable, "-m", "pipeline", *args, "--runner", "FnApiRunner"],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def _keys(client, prefix: str) -> dict[str, int]:
    listed = client.list_objects_v2(Bucket="exports", Prefix=prefix).get("Contents", [])
    return {item["Key"][len(prefix):]: item["Size"] for item in listed}


def test_a_dry_run_reads_from_and_writes_to_s3_as_it_does_locally(s3, tmp_path):
    url, client = s3
    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[:800]
    local_input = tmp_path / "profiles.jsonl"
    local_input.write_text("".join(lines), encoding="utf-8")
    client.put_object(Bucket="exports", Key="in/2026-11/profiles.jsonl", Body=local_input.read_bytes())

    result = _run(["--input", "s3://exports/in/2026-11/", "--output", "s3://exports/out/run1",
                   "--s3_endpoint_url", url])
    _run(["--input", str(local_input), "--output", str(tmp_path / "local")])

    written = _keys(client, "out/run1/")
    assert {"merge_plan.jsonl", "clusters.jsonl", "review.jsonl", "rejected.jsonl", "model.json", "summary.json",
            "metrics.json", "report.html"} <= set(written), written
    assert not [key for key in written if "beam-temp" in key], "shards are copied into the outputs and deleted"
    # a clean export has no rejected lines: an empty object, which Beam's S3 uploader alone could not write
    assert written["rejected.jsonl"] == 0
    for name in ("merge_plan.jsonl", "clusters.jsonl", "review.jsonl"):
        in_s3 = client.get_object(Bucket="exports", Key=f"out/run1/{name}")["Body"].read().decode("utf-8")
        assert sorted(in_s3.splitlines()) == sorted((tmp_path / "local" / name).read_text(encoding="utf-8").splitlines()), name
    assert "wrote s3://exports/out/run1/report.html" in result.stdout
    # no credentials or endpoint chatter at INFO
    assert "Found credentials" not in result.stderr
