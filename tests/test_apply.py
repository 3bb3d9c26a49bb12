"""pipeline/apply.py end to end: the dry run's plan applied against the emulator, a run
killed with SIGKILL and resumed, stale plans, and plans refused before anything is sent."""
from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import botocore.session
import pytest

from emulator import read_profiles_jsonl, start_emulator
from tests.apply_support import (
    DOMAIN,
    ROOT,
    apply_argv,
    emulator_dump,
    emulator_process,
    emulator_stats,
    pair_plan,
    pid,
    read_jsonl,
    run_apply_argv,
    set_aws_env,
    write_jsonl,
)
from tests.helpers import generated_profiles


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    set_aws_env(monkeypatch)


# --------------------------------------------------------------------------- expected merges

_MODEL = botocore.session.get_session().get_service_model("customer-profiles")
_PROFILE_FIELDS = [n for n in _MODEL.shape_for("Profile").members if n not in ("ProfileId", "FoundByItems")]
_SOURCE_FIELDS = set(_MODEL.shape_for("FieldSourceProfileIds").members)


def _prune(value):
    """What the API stores: empty strings, maps and lists dropped (recursively)."""
    if isinstance(value, dict):
        value = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in value.items() if v not in (None, "", {}, [])}
    if isinstance(value, list):
        return [v for v in (_prune(v) for v in value) if v not in (None, "", {}, [])]
    return value


def _as_stored(profile: dict) -> dict:
    return _prune({k: v for k, v in profile.items() if k in _PROFILE_FIELDS or k == "ProfileId"})


def expected_after(profiles: dict[str, dict], plan: list[dict]) -> dict[str, dict]:
    """The documented MergeProfiles semantics, applied request by request: merged profiles
    are deleted; per field (and per attribute key) a named source wins even when it has no
    value; otherwise the main's value, else the first merged profile (in
    ProfileIdsToBeMerged order) that has one."""
    state = copy.deepcopy(profiles)
    for request in plan:
        main, ids = request["MainProfileId"], request["ProfileIdsToBeMerged"]
        sources = request.get("FieldSourceProfileIds") or {}
        order = [state[p] for p in [main, *ids]]

        def pick(get, named):
            if named:
                return get(state[named])
            return next((v for v in map(get, order) if v is not None), None)

        merged = {"ProfileId": main}
        for field in _PROFILE_FIELDS:
            if field == "Attributes":
                continue
            value = pick(lambda p: p.get(field), sources.get(field) if field in _SOURCE_FIELDS else None)
            if value is not None:
                merged[field] = value
        named_attributes = sources.get("Attributes") or {}
        keys = dict.fromkeys([k for p in order for k in p.get("Attributes", {})] + list(named_attributes))
        attributes = {}
        for key in keys:
            value = pick(lambda p: p.get("Attributes", {}).get(key), named_attributes.get(key))
            if value is not None:
                attributes[key] = value
        if attributes:
            merged["Attributes"] = attributes
        for merged_id in ids:
            del state[merged_id]
        state[main] = merged
    return state


# --------------------------------------------------------------------------- (a) dry run -> apply

def test_dry_run_plan_applied_gives_exactly_the_planned_profiles(tmp_path):
    from pipeline.run import run

    profiles_path, _ = generated_profiles(tmp_path, 300, seed=3)
    raw = read_profiles_jsonl(profiles_path)
    initial = {p["ProfileId"]: _as_stored(p) for p in raw}
    out = tmp_path / "out"
    with start_emulator(raw, DOMAIN) as emu:
        assert {p["ProfileId"]: p for p in emu.profiles()} == initial
        summary = run(["--input", str(profiles_path), "--output", str(out), "--domain_name", DOMAIN, "--apply",
                       "--endpoint_url", emu.url, "--max_merges_per_second", "200", "--runner", "FnApiRunner"])
        final = {p["ProfileId"]: p for p in emu.profiles()}
        stats = emu.stats()
    plan = read_jsonl(out / "merge_plan.jsonl")
    assert len(plan) >= 20, "the sample has duplicates"
    assert any(r.get("FieldSourceProfileIds") for r in plan)
    expected = expected_after(initial, plan)
    assert set(final) == set(expected)
    for profile_id, profile in expected.items():
        assert final[profile_id] == profile, profile_id  # field by field, ProfileType and EngagementPreferences too
    touched = [expected[r["MainProfileId"]] for r in plan]
    assert any("ProfileType" in p for p in touched) and any("EngagementPreferences" in p for p in touched)
    # ... and what the dry run said it would make, whatever the emulator's merge rules: every field (and
    # attribute) of each main holds the value of the profile clusters.jsonl chose for it, none where it chose none
    checked = 0
    for cluster in (c for c in read_jsonl(out / "clusters.jsonl") if c["kind"] == "merge"):
        got = final[cluster["main"]]
        assert not (set(cluster["members"]) - {cluster["main"]}) & set(final), "members merged away"
        for field, choice in cluster["choices"].items():
            pairs = (choice.items() if field == "Attributes" else [(None, choice)])
            for key, chosen in pairs:
                source = initial.get(chosen["source"]) or {}
                want = (source.get("Attributes") or {}).get(key) if key else source.get(field)
                have = (got.get("Attributes") or {}).get(key) if key else got.get(field)
                assert have == (want or None), (cluster["main"], field, key, chosen["reason"])
                checked += 1
    assert checked >= 23 * 20
    assert summary["apply"]["merged"] == len(plan) == stats["merges_applied"]
    assert summary["apply"]["profiles_merged_away"] == summary["profiles_merged_away"] == len(initial) - len(final)
    assert summary["merge_requests"] == len(plan), "the dry-run summary is kept"
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["apply"]["merged"] == len(plan) and on_disk["clusters"] == summary["clusters"]
    assert (out / "report.html").exists()

    # Applying the same plan again with the same --output sends nothing.
    with start_emulator(list(final.values()), DOMAIN) as again:
        summary = run_apply_argv(apply_argv(out / "merge_plan.jsonl", out, again.url))
        assert again.stats()["requests"].get("MergeProfiles", 0) == 0
        assert again.stats()["requests"].get("BatchGetProfile", 0) == 0
    assert summary["apply"]["merged"] == len(plan) and summary["apply"]["this_run"]["handled"] == 0


# --------------------------------------------------------------------------- (d) SIGKILL, resume

def test_sigkill_then_rerun_applies_the_rest_once(tmp_path):
    n = 300
    profiles, plan = pair_plan(n, ids_per_request=2)
    write_jsonl(tmp_path / "profiles.jsonl", profiles)
    write_jsonl(tmp_path / "plan.jsonl", plan)
    out = tmp_path / "out"
    with emulator_process(tmp_path / "profiles.jsonl", latency_ms=20) as url:
        argv = apply_argv(tmp_path / "plan.jsonl", out, url, "--merge_shards", "4", rate=40)
        job = subprocess.Popen([sys.executable, "-m", "pipeline", *argv], cwd=ROOT, env=os.environ.copy(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while emulator_stats(url)["merges_applied"] < 60:
                assert job.poll() is None, job.stderr.read()[-2000:]
                assert time.monotonic() < deadline, "the apply run did not get going"
                time.sleep(0.05)
            os.kill(job.pid, signal.SIGKILL)
            job.wait(timeout=10)
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()
        time.sleep(0.3)  # merges the killed run had in flight reach the emulator anyway
        before = emulator_stats(url)
        assert 60 <= before["merges_applied"] < n
        assert not (out / "applied.jsonl").exists()
        journal = [json.loads(line) for path in (out / "journal").glob("*/*.jsonl")
                   for line in path.read_text().splitlines() if line.strip().endswith("}")]
        assert sum(r["event"] == "outcome" for r in journal) >= 40

        summary = run_apply_argv(argv)
        after = emulator_stats(url)
        dump = emulator_dump(url)
    # The rest applied, nothing twice: every request reached the service exactly once.
    assert after["merges_applied"] == n and after["requests"]["MergeProfiles"] == n
    assert after["remerge_attempts"] == 0 and after["partial_remerge_attempts"] == 0
    assert Counter(m["MainProfileId"] for m in dump["MergeLog"]) == Counter(r["MainProfileId"] for r in plan)
    # The journal is whole: one final line per plan line, agreeing with the service.
    lines = read_jsonl(out / "applied.jsonl")
    assert [line["line"] for line in lines] == list(range(1, n + 1))
    outcomes = Counter(line["outcome"] for line in lines)
    assert set(outcomes) <= {"merged", "already_applied"} and sum(outcomes.values()) == n
    for line in lines:
        assert all(dump["MergedInto"][i] == line["request"]["MainProfileId"]
                   for i in line["request"]["ProfileIdsToBeMerged"])
    run = summary["apply"]["this_run"]
    assert summary["apply"]["runs"] == 2
    assert run["merge_requests_sent"] == n - before["requests"]["MergeProfiles"]
    # Those the killed run sent but never recorded were recognised, not sent again.
    in_flight = [line for line in lines if line["outcome"] == "already_applied"]
    assert all("sent by run" in line["reason"] for line in in_flight)


# --------------------------------------------------------------------------- (e) stale plan

def test_stale_plan_requests_are_skipped_and_reported(tmp_path):
    profiles, plan = pair_plan(8, ids_per_request=2)
    outsiders = [{"ProfileId": pid(900), "FirstName": "x"}, {"ProfileId": pid(901), "FirstName": "y"}]
    chained = {"DomainName": DOMAIN, "MainProfileId": plan[1]["MainProfileId"], "ProfileIdsToBeMerged": [pid(950)]}
    profiles += outsiders + [{"ProfileId": pid(950), "FirstName": "z"}]
    plan.insert(2, chained)  # a second request for the main of line 2
    write_jsonl(tmp_path / "plan.jsonl", plan)
    with start_emulator(profiles, DOMAIN) as emu:
        client = emu.client(retries={"total_max_attempts": 1, "mode": "standard"})
        # Since the export, someone else merged: ...
        client.merge_profiles(DomainName=DOMAIN, MainProfileId=pid(900),     # line 1: one of its ids elsewhere
                              ProfileIdsToBeMerged=[plan[0]["ProfileIdsToBeMerged"][0]])
        client.merge_profiles(DomainName=DOMAIN, MainProfileId=pid(901),     # line 2: its main elsewhere
                              ProfileIdsToBeMerged=[plan[1]["MainProfileId"]])
        client.merge_profiles(**plan[3])                                     # line 4: exactly this merge
        summary = run_apply_argv(apply_argv(tmp_path / "plan.jsonl", tmp_path / "out", emu.url))
        dump = emu.backend.store.dump(DOMAIN)
    lines = read_jsonl(tmp_path / "out" / "applied.jsonl")
    by_line = {line["line"]: line for line in lines}
    assert by_line[1]["outcome"] == "skipped" and "stale plan: 1 of 2" in by_line[1]["reason"]
    assert by_line[2]["outcome"] == "skipped" and "main profile" in by_line[2]["reason"]
    assert by_line[3]["outcome"] == "skipped"  # the chained request of a skipped main
    assert by_line[4]["outcome"] == "already_applied"
    assert "this request was not sent by this tool (not in its journal); merged before this run" in by_line[4]["reason"]
    assert all(by_line[n]["outcome"] == "merged" for n in range(5, len(plan) + 1))
    assert (summary["apply"]["skipped"], summary["apply"]["already_applied"], summary["apply"]["merged"]) == \
        (3, 1, len(plan) - 4)
    # Never a partial cluster: line 1's other profile is still there, unmerged.
    assert plan[0]["ProfileIdsToBeMerged"][1] in {p["ProfileId"] for p in dump["Profiles"]}
    assert plan[0]["MainProfileId"] in {p["ProfileId"] for p in dump["Profiles"]}
    assert all(r["attempts"] == 0 for r in by_line.values() if r["outcome"] != "merged"), "skipped ones never sent"


# --------------------------------------------------------------------------- (f) refused plans

def test_bad_plans_are_refused_before_anything_is_sent(tmp_path, capsys):
    from pipeline.run import main

    good = {"DomainName": DOMAIN, "MainProfileId": pid(1), "ProfileIdsToBeMerged": [pid(2)]}
    bad_lines = [
        {"DomainName": DOMAIN, "MainProfileId": pid(100), "ProfileIdsToBeMerged": [pid(101 + i) for i in range(21)]},
        {"DomainName": DOMAIN, "MainProfileId": pid(200), "ProfileIdsToBeMerged": ["NOT-A-PROFILE-ID"]},
        {"DomainName": "another-domain", "MainProfileId": pid(300), "ProfileIdsToBeMerged": [pid(301)]},
        {"DomainName": DOMAIN, "MainProfileId": pid(400), "ProfileIdsToBeMerged": [pid(2)]},   # pid(2) twice
        {"DomainName": DOMAIN, "MainProfileId": pid(500), "ProfileIdsToBeMerged": [pid(1)]},   # merges a main away
        {"DomainName": DOMAIN, "MainProfileId": pid(2), "ProfileIdsToBeMerged": [pid(600)]},   # main merged away
    ]
    profiles = [{"ProfileId": pid(i)} for i in (1, 2, 100, 200, 300, 301, 400, 500, 600, *range(101, 122))]
    with start_emulator(profiles, DOMAIN) as emu:
        for n, bad in enumerate(bad_lines, 2):
            plan = tmp_path / f"plan{n}.jsonl"
            write_jsonl(plan, [good, bad])
            with pytest.raises(ValueError, match=rf"refusing the plan .*\n  line 2: ") as refused:
                run_apply_argv(apply_argv(plan, tmp_path / f"out{n}", emu.url))
            assert "nothing was sent" in str(refused.value)
        everything = tmp_path / "all.jsonl"
        write_jsonl(everything, [good, *bad_lines])
        code = main(apply_argv(everything, tmp_path / "out", emu.url))
        stats = emu.stats()
    err = capsys.readouterr().err
    assert code == 2
    for n, reason in [(2, "21 ids; at most 20"), (3, "do not match [a-f0-9]{32}"), (4, "not the domain of this run"),
                      (5, f"profile {pid(2)} is also merged by line 1"),
                      (6, f"profile {pid(1)} is the main profile of line 1"),
                      (7, f"main profile {pid(2)} is merged away by line 1")]:
        assert f"line {n}: " in err and reason in err, (n, reason, err)
    assert stats["requests"] == {}, "not one request reached the endpoint"
    assert not (tmp_path / "out" / "applied.jsonl").exists()


def test_a_plan_from_a_dry_run_that_lost_data_is_refused(tmp_path, capsys):
    from pipeline.run import main

    profiles, plan = pair_plan(3)
    write_jsonl(tmp_path / "plan.jsonl", plan)
    summary = {"counts_add_up": False, "handover_problems": [
        "blocking entries: 42 before, 40 after; (blocking key, profile) entries were lost in the blocking shuffle"]}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    with start_emulator(profiles, DOMAIN) as emu:
        code = main(apply_argv(tmp_path / "plan.jsonl", tmp_path / "out", emu.url))
        assert emu.stats()["requests"] == {}, "not one request reached the endpoint"
        # the same plan beside a summary whose counts agree is applied
        (tmp_path / "summary.json").write_text(json.dumps({"counts_add_up": True, "handover_problems": []}))
        applied = run_apply_argv(apply_argv(tmp_path / "plan.jsonl", tmp_path / "out", emu.url))
    assert code == 2
    err = capsys.readouterr().err
    assert "lost data between steps" in err and "blocking entries: 42 before, 40 after" in err
    assert applied["apply"]["merged"] == 3


def test_missing_domain_or_region_is_refused_before_sending(tmp_path, monkeypatch):
    profiles, plan = pair_plan(3)
    write_jsonl(tmp_path / "plan.jsonl", plan)
    with start_emulator(profiles, "some-other-domain") as emu:
        with pytest.raises(ValueError, match="domain 'demo' does not exist"):
            run_apply_argv(apply_argv(tmp_path / "plan.jsonl", tmp_path / "out", emu.url))
        monkeypatch.delenv("AWS_DEFAULT_REGION")
        monkeypatch.delenv("AWS_REGION", raising=False)
        with pytest.raises(ValueError, match="no AWS Region"):
            run_apply_argv(apply_argv(tmp_path / "plan.jsonl", tmp_path / "out", emu.url))
        assert emu.stats()["requests"].get("MergeProfiles", 0) == 0


def test_from_plan_without_a_summary_creates_one(tmp_path):
    profiles, plan = pair_plan(5)
    write_jsonl(tmp_path / "plan.jsonl", plan)
    with start_emulator(profiles, DOMAIN) as emu:
        run_apply_argv(apply_argv(tmp_path / "plan.jsonl", tmp_path / "out", emu.url))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary) == {"apply"}
    assert summary["apply"]["merged"] == 5 and summary["apply"]["this_run"]["merge_requests_sent"] == 5
    assert summary["apply"]["this_run"]["batch_get_profile_calls"] >= 1


# --------------------------------------------------------------------------- one run at a time

def test_a_second_apply_run_on_the_same_output_is_refused_while_the_first_runs(tmp_path, caplog):
    import socket

    profiles, plan = pair_plan(6)
    write_jsonl(tmp_path / "plan.jsonl", plan)
    journal = tmp_path / "out" / "journal"
    journal.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (journal / "LOCK").write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(),
                                                  "started": "2026-01-01T00:00:00Z"}))
        with start_emulator(profiles, DOMAIN) as emu:
            with pytest.raises(ValueError, match=f"another apply run is using this journal \\(process {holder.pid} "):
                run_apply_argv(apply_argv(tmp_path / "plan.jsonl", tmp_path / "out", emu.url))
            assert emu.stats()["requests"].get("MergeProfiles", 0) == 0
            holder.kill()
            holder.wait()
            # the process that held it is gone (killed): the lock is taken over, the run goes on
            summary = run_apply_argv(apply_argv(tmp_path / "plan.jsonl", tmp_path / "out", emu.url))
        assert summary["apply"]["merged"] == 6
        assert any("which is gone: taking it over" in r.getMessage() for r in caplog.records)
        assert not (journal / "LOCK").exists(), "the lock is let go when the run ends"
    finally:
        if holder.poll() is None:
            holder.kill()


def test_reports_that_cannot_be_written_stop_with_status_3_and_a_rerun_writes_them(tmp_path, monkeypatch):
    import errno

    import pipeline.apply as apply_module
    from pipeline.apply import ApplyStopped

    profiles, plan = pair_plan(5)
    write_jsonl(tmp_path / "plan.jsonl", plan)
    real = apply_module._write_lines

    def full_disk(path, lines):
        if str(path).endswith("applied.jsonl"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, lines)

    with start_emulator(profiles, DOMAIN) as emu:
        monkeypatch.setattr(apply_module, "_write_lines", full_disk)
        with pytest.raises(ApplyStopped) as stopped:
            run_apply_argv(apply_argv(tmp_path / "plan.jsonl", tmp_path / "out", emu.url))
        assert stopped.value.reason == "outputs" and "No space left on device" in str(stopped.value)
        assert stopped.value.summary["apply"]["merged"] == 5
        monkeypatch.setattr(apply_module, "_write_lines", real)
        summary = run_apply_argv(apply_argv(tmp_path / "plan.jsonl", tmp_path / "out", emu.url))
        assert emu.stats()["requests"]["MergeProfiles"] == 5, "nothing sent again"
    assert summary["apply"]["merged"] == 5
    assert [line["outcome"] for line in read_jsonl(tmp_path / "out" / "applied.jsonl")] == ["merged"] * 5


def test_an_output_where_the_journal_cannot_be_written_is_refused_before_anything_is_sent(tmp_path):
    profiles, plan = pair_plan(2)
    write_jsonl(tmp_path / "plan.jsonl", plan)
    (tmp_path / "file").write_text("a file, not a directory")
    with start_emulator(profiles, DOMAIN) as emu:
        with pytest.raises(ValueError, match="the journal cannot be written there"):
            run_apply_argv(apply_argv(tmp_path / "plan.jsonl", tmp_path / "file" / "out", emu.url))
        assert emu.stats()["requests"].get("MergeProfiles", 0) == 0
