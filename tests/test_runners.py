"""The same job, unchanged, on Beam's runners: the same input must give the same merge plan.

Reference: the FnApiRunner (the default). Then the DirectRunner in multi-processing mode, the
PortableRunner against Beam's Python job service (LOOPBACK, and an EXTERNAL worker pool, which
is how Flink and Spark run Python workers), and the DaskRunner on a dask.distributed
LocalCluster of two worker processes. "The same plan" is: the same clusters (sets of
MainProfileId + ProfileIdsToBeMerged), the same main of each, the same FieldSourceProfileIds;
and the same integer counts in summary.json.

Every job is a subprocess ``python -m pipeline ...`` started from a fresh temporary directory
(never the repository), with a timeout: a hung job fails its test. The package reaches the
workers the way it does in production: ``--setup_file <repo>/setup.py`` is staged by the
portable runs, and the EXTERNAL pool's workers install that staged package and import the job
from it alone (``tests/sdk_container_boot.py``, a stand-in for the SDK container's boot); the
Dask workers (the DaskRunner stages nothing) run with the package pip-installed from the same
setup.py, the source tree hidden. A runner that cannot run here fails, it is never skipped.

``PROFILE_DEDUP_RUNNERS_N=all pytest tests/test_runners.py -s`` runs the whole bundled sample
(3,000 profiles) and prints how long each runner took.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.sdk_container_boot import HERMETIC_SITECUSTOMIZE

pytestmark = pytest.mark.runners

ROOT = Path(__file__).resolve().parents[1]
SETUP_FILE = ROOT / "setup.py"
SAMPLE = ROOT / "examples" / "sample_profiles.jsonl"
PY = sys.executable
SUBSET = os.environ.get("PROFILE_DEDUP_RUNNERS_N", "600")
JOB_TIMEOUT = float(os.environ.get("PROFILE_DEDUP_RUNNERS_TIMEOUT", "300"))  # seconds, one job
SERVICE_TIMEOUT = 60.0  # seconds for a service to listen
OUTPUTS = ("merge_plan.jsonl", "clusters.jsonl", "review.jsonl", "rejected.jsonl", "model.json", "summary.json",
           "report.html")
SUMMARY_COUNTS = ("records_read", "records_rejected", "profiles_valid", "profiles_in_merges", "profiles_merged_away",
                  "profiles_under_review", "merge_requests", "clusters", "clusters_held", "profiles_split_off",
                  "profiles_vouched_for_by_a_member", "candidate_pairs", "candidate_pairs_per_rule", "capped_blocks", "pairs_matched", "pairs_for_review")
TIMINGS: dict[str, float] = {}


# ---------------------------------------------------------------- helpers

def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _stop(proc: subprocess.Popen) -> None:
    """End a process we started and everything it started (its own session), by its id."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def run_job(name: str, args: list[str], cwd: Path, env: dict | None = None, python_args: list[str] | None = None,
            ) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` in ``cwd`` with the job timeout; fail the test if it fails or hangs."""
    command = [PY, *(python_args or ["-m", "pipeline"]), *args]
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=JOB_TIMEOUT)
    except subprocess.TimeoutExpired:
        _stop(proc)
        stdout, stderr = proc.communicate()
        pytest.fail(f"{name}: the job hung: no result after {JOB_TIMEOUT:.0f} s\n{stderr[-4000:]}")
    finally:
        _stop(proc)  # a job's leftover workers
    TIMINGS[name] = time.monotonic() - started
    if proc.returncode != 0:
        pytest.fail(f"{name}: the job failed (exit {proc.returncode})\n{stderr[-6000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def service(name: str, command: list[str], cwd: Path, log: Path, env: dict | None = None, port: int | None = None,
            ready=None):
    """A background service for the duration of a test; fails the test if it does not come up."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVICE_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}:\n{_tail(log)}")
            if port is not None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    pass
            elif ready is not None and ready():
                break
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not come up in {SERVICE_TIMEOUT:.0f} s:\n{_tail(log)}")
            time.sleep(0.2)
        yield proc
    finally:
        _stop(proc)


def venv_env(**extra: str) -> dict:
    """This interpreter's environment, with its bin first on PATH (Beam's worker pool starts
    plain ``python``), nothing from the repository on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = os.pathsep.join([str(Path(PY).parent), env.get("PATH", "")])
    env.update(extra)
    return env


def canonical_plan(out: Path) -> dict[str, tuple[frozenset, tuple]]:
    """main -> (cluster members, field sources of its requests): requests of one group share the main."""
    groups: dict[str, dict] = {}
    for line in (out / "merge_plan.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        request = json.loads(line)
        group = groups.setdefault(request["MainProfileId"], {"members": {request["MainProfileId"]}, "sources": []})
        group["members"].update(request["ProfileIdsToBeMerged"])
        group["sources"].append(json.dumps(request.get("FieldSourceProfileIds", {}), sort_keys=True))
    return {main: (frozenset(g["members"]), tuple(sorted(g["sources"]))) for main, g in groups.items()}


def assert_same_plan(name: str, out: Path, reference: Path) -> None:
    for file in OUTPUTS:
        assert (out / file).exists(), f"{name} did not write {file}"
    leftovers = sorted(p.name for p in out.iterdir() if p.name.startswith("beam-temp"))
    assert not leftovers, f"{name} left temporary write directories (a sink ran more than once?): {leftovers}"
    got, want = canonical_plan(out), canonical_plan(reference)
    got_clusters, want_clusters = {v[0] for v in got.values()}, {v[0] for v in want.values()}
    assert got_clusters == want_clusters, (
        f"{name}: different clusters: {len(got_clusters - want_clusters)} only on {name}, "
        f"{len(want_clusters - got_clusters)} only on the FnApiRunner; e.g. "
        f"{sorted(map(sorted, got_clusters ^ want_clusters))[:3]}")
    assert set(got) == set(want), f"{name}: different mains: {sorted(set(got) ^ set(want))[:5]}"
    differing = [main for main in want if got[main] != want[main]]
    assert not differing, f"{name}: different FieldSourceProfileIds for mains {differing[:5]}"
    summary, reference_summary = (json.loads((d / "summary.json").read_text()) for d in (out, reference))
    for key in SUMMARY_COUNTS:
        assert summary[key] == reference_summary[key], f"{name}: summary.json {key}: {summary[key]} != {reference_summary[key]}"


def require_packaging_tools() -> None:
    """--setup_file makes Beam build the sdist with this environment's setuptools, without
    build isolation; pyproject.toml's ``license = "..."`` (PEP 639) needs setuptools>=77."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        setuptools_major = int(version("setuptools").split(".")[0])
        version("build")
    except PackageNotFoundError as missing:
        pytest.fail(f"{missing} is not installed: --setup_file needs setuptools>=77 and build (the dev extra)")
    if setuptools_major < 77:
        pytest.fail(f"setuptools {version('setuptools')} cannot build this package for --setup_file "
                    "(PEP 639 license needs setuptools>=77): install the dev extra")


def install_package(target: Path, work: Path) -> Path:
    """pip-install the package built from setup.py into ``target`` (what a worker image does)."""
    dist = work / "dist"
    subprocess.run([PY, "-m", "build", "--sdist", "--no-isolation", "--skip-dependency-check", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (sdist,) = dist.glob("*.tar.gz")
    subprocess.run([PY, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
                    "--target", str(target), str(sdist)], check=True, capture_output=True, timeout=300)
    return sdist


def assert_complete_install(site: Path) -> None:
    """Every module of the repository's packages is in the installed copy."""
    for package in ("pipeline", "transforms"):
        missing = [p.name for p in (ROOT / package).glob("*.py") if not (site / package / p.name).exists()]
        assert not missing, f"the installed package lacks {package}/{missing}"


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runners")


@pytest.fixture(scope="module")
def profiles(work) -> Path:
    if SUBSET == "all":
        return SAMPLE
    path = work / "profiles.jsonl"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[: int(SUBSET)]
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(work, profiles) -> Path:
    """The FnApiRunner's plan (no --runner: the job's default)."""
    cwd, out = work / "fnapi-cwd", work / "fnapi-out"
    cwd.mkdir()
    run_job("FnApiRunner", ["--input", str(profiles), "--output", str(out)], cwd, env=venv_env())
    assert canonical_plan(out), "the sample has duplicates: the reference plan must not be empty"
    return out


@pytest.fixture(scope="module", autouse=True)
def _print_timings():
    yield
    if TIMINGS:
        print("\nrunner timings (s, whole job incl. start-up):")
        for name, seconds in TIMINGS.items():
            print(f"  {name:<32} {seconds:7.1f}")


# ---------------------------------------------------------------- tests

def test_direct_runner_multi_processing(work, profiles, reference):
    """The DirectRunner first tries Prism, which it would download (no timeout) from the
    internet: ``--prism_location`` pointing at a local path that does not exist makes it give
    up at once, without any network call, and fall back to its FnApiRunner, here with two
    worker processes."""
    cwd, out = work / "direct-cwd", work / "direct-out"
    cwd.mkdir()
    script = ("import logging, sys; logging.basicConfig(level=logging.INFO); from pipeline.run import run; "
              "run(sys.argv[1:]); from apache_beam.runners.portability.fn_api_runner import worker_handlers; "
              "print('runner data buffer time limit', worker_handlers.DATA_BUFFER_TIME_LIMIT_MS)")
    result = run_job("DirectRunner multi_processing x2", [
        "--input", str(profiles), "--output", str(out), "--runner", "DirectRunner",
        "--direct_running_mode=multi_processing", "--direct_num_workers=2",
        "--prism_location", str(work / "no-prism-here"),
    ], cwd, env=venv_env(), python_args=["-c", script])
    assert "Downloading prism" not in result.stderr, "the DirectRunner tried to download Prism"
    assert "Falling back to DirectRunner" in result.stderr, result.stderr[-3000:]
    assert "'direct_running_mode': 'multi_processing'" in result.stderr
    # the runner buffered its data to the workers by size, not on a timer (see flush_runner_data_by_size)
    assert "runner data buffer time limit 0" in result.stdout
    assert_same_plan("DirectRunner", out, reference)


def _job_service(work: Path, name: str):
    require_packaging_tools()
    port = free_port()
    staging = work / f"{name}-staging"
    staging.mkdir()
    command = [PY, "-m", "apache_beam.runners.portability.local_job_service_main", "--port", str(port),
               "--staging_dir", str(staging)]
    return port, staging, service(f"{name} job service", command, work, work / f"{name}-jobservice.log",
                                  env=venv_env(), port=port)


def test_portable_runner_loopback(work, profiles, reference):
    port, staging, job_service = _job_service(work, "loopback")
    cwd, out = work / "loopback-cwd", work / "loopback-out"
    cwd.mkdir()
    with job_service:
        run_job("PortableRunner LOOPBACK", [
            "--input", str(profiles), "--output", str(out), "--runner", "PortableRunner",
            "--job_endpoint", f"localhost:{port}", "--environment_type", "LOOPBACK", "--setup_file", str(SETUP_FILE),
        ], cwd, env=venv_env())
    staged = list(staging.rglob("*workflow.tar.gz"))
    assert staged, f"--setup_file staged no package: {sorted(p.name for p in staging.rglob('*'))}"
    with tarfile.open(staged[0]) as tar:
        names = {Path(n).relative_to(Path(n).parts[0]).as_posix() for n in tar.getnames() if len(Path(n).parts) > 1}
    for module in ("pipeline/run.py", "transforms/cluster.py", "pipeline/templates/report.html.j2"):
        assert module in names, f"the staged package lacks {module}"
    assert_same_plan("PortableRunner LOOPBACK", out, reference)


def test_portable_runner_external_worker_pool(work, profiles, reference):
    """EXTERNAL environment: Beam's worker pool starts the SDK workers, each through the boot
    stand-in, which installs the package staged by --setup_file (not the repository)."""
    pool_port = free_port()
    boot_dir = work / "boot"
    boot_dir.mkdir()
    boot = work / "boot.sh"
    boot.write_text(f'#!/bin/sh\nexec "{PY}" "{ROOT / "tests" / "sdk_container_boot.py"}" "$@"\n')
    boot.chmod(0o755)
    pool_cwd, cwd, out = work / "pool-cwd", work / "external-cwd", work / "external-out"
    pool_cwd.mkdir()
    cwd.mkdir()
    port, _, job_service = _job_service(work, "external")
    pool = service("worker pool", [PY, "-m", "apache_beam.runners.worker.worker_pool_main", "--service_port",
                                   str(pool_port), "--container_executable", str(boot)],
                   pool_cwd, work / "workerpool.log", env=venv_env(BEAM_BOOT_DIR=str(boot_dir)), port=pool_port)
    with job_service, pool:
        run_job("PortableRunner EXTERNAL pool", [
            "--input", str(profiles), "--output", str(out), "--runner", "PortableRunner",
            "--job_endpoint", f"localhost:{port}", "--environment_type", "EXTERNAL",
            "--environment_config", f"localhost:{pool_port}", "--setup_file", str(SETUP_FILE),
        ], cwd, env=venv_env())
    workers = [p for p in boot_dir.iterdir() if p.is_dir()]
    assert workers, f"no SDK worker was started by the pool:\n{_tail(work / 'workerpool.log')}"
    for worker in workers:
        where = json.loads((worker / "imported_from.json").read_text())
        assert all(path.startswith(str(worker / "site")) for path in where), (
            f"the worker imported the job from {where}, not from the staged package")
        assert_complete_install(worker / "site")
    assert_same_plan("PortableRunner EXTERNAL", out, reference)


DASK_CLUSTER = """
import os, sys, time
from distributed import LocalCluster
if __name__ == "__main__":
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           host="127.0.0.1")
    cluster.wait_for_workers(2, timeout=60)
    with open(sys.argv[1] + ".tmp", "w") as out:
        out.write(cluster.scheduler_address)
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        time.sleep(3600)
"""


def test_dask_runner_local_cluster(work, profiles, reference):
    """Beam's DaskRunner cannot run this job (see pipeline/dask_runner.py); its fixed subclass
    runs it on a LocalCluster of two worker processes whose only copy of the job is the
    package pip-installed from setup.py (the DaskRunner stages nothing: a Dask cluster's
    workers get the package from their image)."""
    try:
        import distributed
    except ImportError:
        pytest.fail("dask.distributed is not installed: the DaskRunner needs apache-beam[dask] (the dask extra)")
    require_packaging_tools()
    site, hermetic = work / "dask-site", work / "dask-hermetic"
    hermetic.mkdir()
    (hermetic / "sitecustomize.py").write_text(HERMETIC_SITECUSTOMIZE)
    install_package(site, work)
    assert_complete_install(site)
    env = venv_env(PYTHONPATH=os.pathsep.join([str(site), str(hermetic)]))
    script, address_file = work / "dask_cluster.py", work / "dask-scheduler-address"
    script.write_text(DASK_CLUSTER)
    cluster_cwd, cwd, out = work / "dask-cluster-cwd", work / "dask-cwd", work / "dask-out"
    cluster_cwd.mkdir()
    cwd.mkdir()
    with service("dask LocalCluster", [PY, str(script), str(address_file)], cluster_cwd, work / "dask-cluster.log",
                 env=env, ready=address_file.exists):
        address = address_file.read_text().strip()
        with distributed.Client(address, timeout=30) as client:
            where = client.run(lambda: __import__("transforms.cluster").cluster.__file__)
        assert len(where) == 2, f"expected 2 Dask workers, found {len(where)}"
        assert all(path.startswith(str(site)) for path in where.values()), where
        run_job("DaskRunner LocalCluster x2", [
            "--input", str(profiles), "--output", str(out), "--runner", "pipeline.dask_runner.DaskRunner",
            "--dask_client_address", address, "--setup_file", str(SETUP_FILE),
        ], cwd, env=env)
    assert_same_plan("DaskRunner", out, reference)
