"""Airflow DAG: a daily dry run of profile-dedup, then apply of the plan a person reviewed.

Needs apache-airflow-providers-apache-beam (BeamRunPythonPipelineOperator) and
apache-airflow-providers-amazon (S3KeySensor) on the Airflow workers, and the job installed
in the interpreter ``PYTHON`` (the image of deploy/image). The DAG runs ``python -m pipeline``
with the options below; the dry run goes to the Flink session cluster of deploy/flink, the
apply (a rate-limited stream of MergeProfiles calls) runs in the Airflow worker.

Review: the dry run writes s3://.../runs/<date>/ (merge_plan.jsonl, report.html, ...). A person
reads report.html and uploads the plan they approve (the same file, or with lines removed) to
runs/<date>/reviewed/merge_plan.jsonl; only then does the apply task start. Without a reviewed
plan within three days the apply is skipped, never run on an unreviewed plan.

Credentials: the Airflow worker's role (IRSA or instance profile) for the apply; the Flink
task managers' own role for the dry run. No AWS keys in Airflow connections.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow import DAG
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator

PYTHON = "/opt/profile-dedup/venv/bin/python"   # has profile-dedup installed
SETUP_FILE = "/opt/profile-dedup/setup.py"      # staged to the Flink SDK workers
EXPORTS = "s3://my-export-bucket/exports/{{ ds }}/*.jsonl"
RUN_DIR = "s3://my-output-bucket/profile-dedup/runs/{{ ds }}"
REVIEWED_PLAN = RUN_DIR + "/reviewed/merge_plan.jsonl"
DOMAIN = "my-domain"
AWS_REGION = "eu-west-2"

with DAG(
    dag_id="profile_dedup",
    description="Daily dry run of profile-dedup; apply of the reviewed merge plan",
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2026, 12, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "owner": "customer-data"},
    tags=["profile-dedup", "customer-profiles"],
) as dag:
    dry_run = BeamRunPythonPipelineOperator(
        task_id="dry_run",
        py_interpreter=PYTHON,
        py_options=["-m"],
        py_file="pipeline",
        runner="PortableRunner",
        pipeline_options={
            "job_endpoint": "beam-flink-job-server.profile-dedup.svc.cluster.local:8099",
            "artifact_endpoint": "beam-flink-job-server.profile-dedup.svc.cluster.local:8098",
            "environment_type": "EXTERNAL",
            "environment_config": "localhost:50000",
            "setup_file": SETUP_FILE,
            "parallelism": 8,
            "job_name": "profile-dedup-{{ ds_nodash }}",
            "input": EXPORTS,
            "output": RUN_DIR,
            "domain_name": DOMAIN,
            "match_threshold": 0.95,
            "review_threshold": 0.5,
            "cluster_member_threshold": 0.5,
            "max_block_size": 50,
            "max_cluster_size": 50,
            "identifier_fields": "AccountNumber",
            "default_region": "GB",
            "main_policy": "most_complete",
        },
        execution_timeout=timedelta(hours=6),
    )

    wait_for_review = S3KeySensor(
        task_id="wait_for_reviewed_plan",
        bucket_key=REVIEWED_PLAN,
        mode="reschedule",
        poke_interval=15 * 60,
        timeout=3 * 24 * 3600,
        soft_fail=True,
    )

    apply = BeamRunPythonPipelineOperator(
        task_id="apply_reviewed_plan",
        py_interpreter=PYTHON,
        py_options=["-m"],
        py_file="pipeline",
        runner="FnApiRunner",
        pipeline_options={
            "from_plan": REVIEWED_PLAN,
            "apply": True,
            "output": RUN_DIR + "/apply",
            "domain_name": DOMAIN,
            "aws_region": AWS_REGION,
            "max_merges_per_second": 50,
            "merge_shards": 8,
            "merge_concurrency": 4,
            "max_merges": 50000,
            "fix_engagement_preferences": True,
        },
        execution_timeout=timedelta(hours=12),
    )

    dry_run >> wait_for_review >> apply
