"""What can be checked of deploy/ without the clouds: manifests parse, the IAM policies grant
only what the job uses, the Flex Template's parameters are the job's options one to one, the
images are Beam's SDK image of the installed apache-beam, and the Airflow DAG (validated
statically: Airflow is not installed here) passes only options that exist."""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.options import ProfileDedupOptions

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
BEAM_VERSION = version("apache-beam")
FOLDERS = ("dataflow", "flink", "spark", "dask", "schedule", "iam")
PROFILE_ACTIONS = {"profile:MergeProfiles", "profile:BatchGetProfile", "profile:UpdateProfile", "profile:GetDomain"}
S3_ACTIONS = {"s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:DeleteObject"}
DOMAIN_ARN = re.compile(r"^arn:aws:profile:REGION:ACCOUNT:domains/DOMAIN$")


def _option_actions() -> list[argparse.Action]:
    parser = argparse.ArgumentParser(add_help=False)
    ProfileDedupOptions._add_argparse_args(parser)
    return list(parser._actions)


def _as_parameter_value(default) -> str | None:
    """An option's default as a Flex Template parameter string (None: no default)."""
    if default is None:
        return None
    if isinstance(default, bool):
        return str(default).lower()
    return str(default)


def _statements(path: Path) -> list[dict]:
    policy = json.loads(path.read_text())
    assert policy["Version"] == "2012-10-17"
    return policy["Statement"]


def _actions(statement: dict) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def _resources(statement: dict) -> list[str]:
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else list(resource)


# ---------------------------------------------------------------- layout

@pytest.mark.parametrize("folder", FOLDERS)
def test_every_deploy_folder_has_a_readme_with_commands(folder):
    readme = DEPLOY / folder / "README.md"
    assert readme.exists(), f"deploy/{folder}/README.md is missing"
    assert "```" in readme.read_text(), f"deploy/{folder}/README.md has no commands"


def test_no_credentials_in_deploy():
    secret = re.compile(r"(AKIA|ASIA)[A-Z0-9]{16}|aws_secret_access_key|BEGIN (RSA )?PRIVATE KEY", re.I)
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            assert not secret.search(path.read_text(errors="replace")), f"{path} looks like it holds a credential"


# ---------------------------------------------------------------- manifests

def test_yaml_manifests_parse_as_kubernetes_objects():
    manifests = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
    assert len(manifests) >= 5, manifests
    for path in manifests:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert documents, f"{path} is empty"
        for document in documents:
            assert {"apiVersion", "kind", "metadata"} <= set(document), f"{path}: {document.get('kind')}"
            assert document["metadata"].get("name") or document["metadata"].get("generateName"), path


def _containers(document: dict) -> list[dict]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("containers", "initContainers") and isinstance(value, list):
                    found.extend(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    return found


def test_beam_images_in_manifests_are_the_installed_beam():
    images = [c["image"] for path in DEPLOY.rglob("*.yaml") for d in yaml.safe_load_all(path.read_text()) if d
              for c in _containers(d)]
    beam_images = [image for image in images if image.startswith("apache/beam")]
    assert any("flink" in image and "job_server" in image for image in beam_images), beam_images
    for image in beam_images:
        assert image.endswith(f":{BEAM_VERSION}"), f"{image} is not apache-beam {BEAM_VERSION}"


def test_flink_workers_are_an_external_worker_pool_sidecar():
    (deployment,) = [d for d in yaml.safe_load_all((DEPLOY / "flink" / "flink-session.yaml").read_text())
                     if d and d["kind"] == "Deployment" and d["metadata"]["name"] == "flink-taskmanager"]
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    pool = containers["beam-worker-pool"]
    assert pool["args"] == ["--worker_pool"]
    assert any(port["containerPort"] == 50000 for port in pool["ports"])
    submit = yaml.safe_load((DEPLOY / "flink" / "submit-job.yaml").read_text())
    args = submit["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--environment_type=EXTERNAL" in args and "--environment_config=localhost:50000" in args


# ---------------------------------------------------------------- IAM

def test_iam_policies_grant_only_what_the_job_uses():
    dry_run, apply = DEPLOY / "iam" / "dry-run-policy.json", DEPLOY / "iam" / "apply-policy.json"
    granted = set()
    for path in (dry_run, apply):
        for statement in _statements(path):
            assert statement["Effect"] == "Allow"
            actions = _actions(statement)
            granted |= actions
            assert actions <= PROFILE_ACTIONS | S3_ACTIONS, f"{path.name}: {actions - PROFILE_ACTIONS - S3_ACTIONS}"
            assert not any("*" in a for a in actions), f"{path.name}: wildcard action"
            for resource in _resources(statement):
                assert resource != "*", f"{path.name}: unscoped resource"
                if actions & PROFILE_ACTIONS:
                    assert DOMAIN_ARN.match(resource), resource
            if "s3:ListBucket" in actions:
                assert statement["Condition"]["StringLike"]["s3:prefix"], "ListBucket must be limited to a prefix"
            if "s3:DeleteObject" in actions:
                assert all("beam-temp-" in r for r in _resources(statement)), "delete only Beam's temporary files"
    assert not any(_actions(s) & PROFILE_ACTIONS for s in _statements(dry_run)), "a dry run must not reach profiles"
    assert {"profile:MergeProfiles", "profile:BatchGetProfile", "profile:UpdateProfile"} <= granted
    assert "profile:SearchProfiles" not in granted


def test_trust_policies_parse_and_use_roles_not_users():
    for path in sorted((DEPLOY / "iam").glob("trust-*.json")):
        for statement in _statements(path):
            assert _actions(statement) <= {"sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"}, path
            assert "AWS" not in statement["Principal"], f"{path}: trust a runtime, not an account or a user"


# ---------------------------------------------------------------- Dataflow Flex Template

def test_flex_template_parameters_are_the_job_options_one_to_one():
    metadata = json.loads((DEPLOY / "dataflow" / "metadata.json").read_text())
    parameters = {p["name"]: p for p in metadata["parameters"]}
    assert len(parameters) == len(metadata["parameters"]), "duplicate parameter names"
    options = {action.dest: action for action in _option_actions()}
    regenerate = "regenerate: python deploy/dataflow/make_metadata.py > deploy/dataflow/metadata.json"
    assert set(parameters) == set(options), (
        f"missing {sorted(set(options) - set(parameters))}, extra {sorted(set(parameters) - set(options))}; {regenerate}")
    for name, action in options.items():
        parameter = parameters[name]
        assert parameter["helpText"] == action.help, f"{name}: help text differs; {regenerate}"
        assert parameter["label"] and parameter["regexes"], name
        default = _as_parameter_value(action.default)
        if default is None:
            assert parameter["isOptional"] or name == "output", f"{name} has no default but is required"
            continue
        assert parameter["isOptional"], f"{name} has a default: it is optional"
        assert any(re.fullmatch(regex, default) for regex in parameter["regexes"]), (
            f"{name}: no regex accepts the default {default!r}")
        for choice in action.choices or ():
            assert any(re.fullmatch(regex, choice) for regex in parameter["regexes"]), f"{name}: rejects {choice!r}"


def test_flex_template_regexes_reject_nonsense():
    parameters = {p["name"]: p["regexes"] for p in json.loads((DEPLOY / "dataflow" / "metadata.json").read_text())
                  ["parameters"]}
    rejected = {"match_threshold": "1.5", "max_block_size": "-3", "domain_name": "no spaces please",
                "output": "/local/path", "main_policy": "newest", "redact": "yes"}
    for name, value in rejected.items():
        assert not any(re.fullmatch(regex, value) for regex in parameters[name]), f"{name} accepts {value!r}"


_SDK_IMAGE = re.compile(r"^FROM\s+apache/beam_python(?P<python>3\.\d+)_sdk:(?P<tag>\S+)", re.M)


@pytest.mark.parametrize("dockerfile", ["dataflow/Dockerfile", "image/Dockerfile"])
def test_dockerfile_base_is_beams_sdk_image_of_the_installed_beam(dockerfile):
    text = (DEPLOY / dockerfile).read_text()
    match = _SDK_IMAGE.search(text)
    assert match, f"{dockerfile} is not based on apache/beam_python3.X_sdk"
    assert match["tag"] == BEAM_VERSION, f"{dockerfile}: Beam {match['tag']}, installed {BEAM_VERSION}"
    assert match["python"] == f"{sys.version_info.major}.{sys.version_info.minor}", (
        f"{dockerfile}: Python {match['python']} in the image, {sys.version_info[:2]} here")


def test_dataflow_dockerfile_is_a_flex_template():
    text = (DEPLOY / "dataflow" / "Dockerfile").read_text()
    assert "/opt/google/dataflow/python_template_launcher" in text
    assert "FLEX_TEMPLATE_PYTHON_PY_FILE" in text
    assert (DEPLOY / "dataflow" / "main.py").exists()
    ast.parse((DEPLOY / "dataflow" / "main.py").read_text())


# ---------------------------------------------------------------- Airflow DAG (static)

def _beam_operator_calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) == "BeamRunPythonPipelineOperator"]


def _known_options() -> set[str]:
    """Every option Beam and the job know (the registry of PipelineOptions subclasses)."""
    import apache_beam.runners.portability.flink_runner  # noqa: F401 (registers its options)
    import apache_beam.runners.portability.spark_runner  # noqa: F401

    return set(PipelineOptions([]).get_all_options())


def test_airflow_dag_runs_the_job_with_options_that_exist():
    source = (DEPLOY / "schedule" / "profile_dedup_dag.py").read_text()
    tree = ast.parse(source)
    imports = {(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               for alias in node.names}
    assert ("airflow.providers.apache.beam.operators.beam", "BeamRunPythonPipelineOperator") in imports
    calls = _beam_operator_calls(tree)
    assert len(calls) == 2, "a dry run and an apply"
    known = _known_options()
    tasks = {}
    for call in calls:
        keywords = {k.arg: k.value for k in call.keywords}
        task_id = ast.literal_eval(keywords["task_id"])
        assert ast.literal_eval(keywords["py_file"]) == "pipeline"
        assert ast.literal_eval(keywords["py_options"]) == ["-m"], "python -m pipeline: the installed package"
        assert "runner" in keywords
        options = keywords["pipeline_options"]
        assert isinstance(options, ast.Dict)
        names = [ast.literal_eval(key) for key in options.keys]
        unknown = sorted(set(names) - known)
        assert not unknown, f"{task_id}: options that neither Beam nor the job knows: {unknown}"
        tasks[task_id] = dict(zip(names, options.values))
    (dry_run,) = [t for t in tasks.values() if "input" in t]
    (apply,) = [t for t in tasks.values() if "from_plan" in t]
    assert "apply" not in dry_run and {"output", "domain_name"} <= set(dry_run)
    assert ast.literal_eval(apply["apply"]) is True
    assert {"output", "domain_name", "aws_region"} <= set(apply)
    assert "schedule=" in source and ">>" in source


def test_the_readme_options_table_names_every_job_option():
    # README, --help and the code stay in agreement: an option added to ProfileDedupOptions
    # without a line in the README's Options section fails here.
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Options"):readme.index("\n## ", readme.index("## Options") + 1)]
    named = set(re.findall(r"`(--[a-z_]+)", section))
    missing = sorted(action.option_strings[0] for action in _option_actions() if action.option_strings[0] not in named)
    assert not missing, f"options missing from the README's Options section: {missing}"
