"""A stand-in for the Beam Python SDK container's boot program, for the EXTERNAL worker pool test.

In production the worker pool is the SDK image started with ``--worker_pool`` (Flink or Spark
sidecar): for every worker it runs ``/opt/apache/beam/boot``, which asks the runner's
provision service for the job's options and staged files, installs them (the
``workflow.tar.gz`` built from ``--setup_file``, ``--extra_package`` files), then starts the
Python SDK harness. Beam's ``worker_pool_main`` alone skips all that: its workers use whatever
is installed where the pool runs. This script does what boot does, so that the test's workers
import the job from the staged package and from nowhere else:

    python -m apache_beam.runners.worker.worker_pool_main --service_port M \\
        --container_executable BOOT     # BOOT: a wrapper that runs this file

It installs into ``$BEAM_BOOT_DIR/<worker id>/site`` (``pip --target``, no index, no build
isolation: nothing is downloaded) and puts that first on the harness's ``PYTHONPATH``. It
writes ``imported_from.json`` there: where ``pipeline`` and ``transforms`` are imported from in
the harness's environment. An editable install of the project in the same venv is hidden
from the harness (``HERMETIC_SITECUSTOMIZE``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import grpc
from apache_beam.portability import common_urns
from apache_beam.portability.api import (beam_artifact_api_pb2, beam_artifact_api_pb2_grpc, beam_provision_api_pb2,
                                         beam_provision_api_pb2_grpc, beam_runner_api_pb2, endpoints_pb2)
from google.protobuf import json_format, text_format

# On PYTHONPATH of a worker, this hides an editable install of the project (the development
# venv has one), so that a module missing from the staged package fails instead of being
# found in the source tree.
HERMETIC_SITECUSTOMIZE = """import sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
sys.path_hooks[:] = [h for h in sys.path_hooks if "__editable__" not in getattr(h, "__module__", "")]
"""

WORKFLOW_TARBALL = "workflow.tar.gz"
EXTRA_PACKAGES = "extra_packages.txt"


def _descriptor(url: str) -> str:
    return text_format.MessageToString(endpoints_pb2.ApiServiceDescriptor(url=url))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    for name in ("id", "logging_endpoint", "artifact_endpoint", "provision_endpoint", "control_endpoint"):
        parser.add_argument(f"--{name}", default="")
    args, _ = parser.parse_known_args(argv)
    worker_dir = os.path.join(os.environ.get("BEAM_BOOT_DIR", "/tmp/beam-boot"), args.id or "worker")
    staged, site = os.path.join(worker_dir, "staged"), os.path.join(worker_dir, "site")
    os.makedirs(staged, exist_ok=True)
    log = open(os.path.join(worker_dir, "boot.log"), "ab")
    os.dup2(log.fileno(), 1)  # the pool pipes our stdout and never reads it
    os.dup2(log.fileno(), 2)
    metadata = [("worker_id", args.id)]

    provision = beam_provision_api_pb2_grpc.ProvisionServiceStub(grpc.insecure_channel(args.provision_endpoint))
    info = provision.GetProvisionInfo(beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=metadata).info

    # Materialise the staged files, as boot does.
    artifact_url = args.artifact_endpoint or info.artifact_endpoint.url
    retrieval = beam_artifact_api_pb2_grpc.ArtifactRetrievalServiceStub(grpc.insecure_channel(artifact_url))
    names = []
    for dependency in info.dependencies:
        if dependency.role_urn != common_urns.artifact_roles.STAGING_TO.urn:
            continue
        name = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(dependency.role_payload).staged_name
        with open(os.path.join(staged, name), "wb") as out:
            for chunk in retrieval.GetArtifact(beam_artifact_api_pb2.GetArtifactRequest(artifact=dependency),
                                               metadata=metadata):
                out.write(chunk.data)
        names.append(name)
    print(f"staged: {sorted(names)}", flush=True)

    # Install, in boot's order: extra packages, then the --setup_file package.
    packages = []
    if EXTRA_PACKAGES in names:
        with open(os.path.join(staged, EXTRA_PACKAGES)) as listing:
            packages += [os.path.join(staged, line.strip()) for line in listing if line.strip()]
    if WORKFLOW_TARBALL in names:
        packages.append(os.path.join(staged, WORKFLOW_TARBALL))
    if packages:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                        "--no-build-isolation", "--target", site, *packages], check=True, stdout=log, stderr=log)

    hermetic = os.path.join(worker_dir, "hermetic")
    os.makedirs(hermetic, exist_ok=True)
    with open(os.path.join(hermetic, "sitecustomize.py"), "w") as out:
        out.write(HERMETIC_SITECUSTOMIZE)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (site, hermetic, env.get("PYTHONPATH", "")) if p)
    env.update({
        "WORKER_ID": args.id,
        "PIPELINE_OPTIONS": json_format.MessageToJson(info.pipeline_options),
        "SEMI_PERSISTENT_DIRECTORY": worker_dir,
        "LOGGING_API_SERVICE_DESCRIPTOR": _descriptor(args.logging_endpoint or info.logging_endpoint.url),
        "CONTROL_API_SERVICE_DESCRIPTOR": _descriptor(args.control_endpoint or info.control_endpoint.url),
        "RUNNER_CAPABILITIES": " ".join(info.runner_capabilities),
    })
    if info.status_endpoint.url:
        env["STATUS_API_SERVICE_DESCRIPTOR"] = _descriptor(info.status_endpoint.url)
    where = subprocess.run(
        [sys.executable, "-c", "import json, pipeline.run, transforms.cluster; "
         "print(json.dumps([pipeline.run.__file__, transforms.cluster.__file__]))"],
        env=env, cwd=worker_dir, capture_output=True, text=True, check=True)
    with open(os.path.join(worker_dir, "imported_from.json"), "w") as out:
        out.write(where.stdout)
    os.chdir(worker_dir)
    os.execve(sys.executable, [sys.executable, "-m", "apache_beam.runners.worker.sdk_worker_main"], env)


if __name__ == "__main__":
    main()
