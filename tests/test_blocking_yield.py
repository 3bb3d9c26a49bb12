"""Tests for benchmarks/blocking_yield.py: why blocking leaves a true pair out, and the script's tables."""
from __future__ import annotations

import numpy as np

from tests.helpers import generated_profiles, load_benchmark
from transforms.block import KEY_SEPARATOR, block_keys
from transforms.normalize import profile_features


def _load():
    return load_benchmark("blocking_yield")


RULES = [{"name": "phone", "fields": ["phones"]},
         {"name": "first_name+last_name_phonetic", "fields": ["first", "last_phonetic"], "window": 1,
          "max_block_size": 1000}]


def _features(n: int, first: str, last: str, phone: str | None = None, birth: str | None = None) -> dict:
    profile = {"ProfileId": f"{n:032x}", "FirstName": first, "LastName": last}
    if phone:
        profile["PhoneNumber"] = phone
    if birth:
        profile["BirthDate"] = birth
    return profile_features(profile, "US", ())


def test_missed_kind_tells_no_key_from_capped_blocks_from_windows():
    module = _load()
    phone, name = f"0{KEY_SEPARATOR}+14155552671", KEY_SEPARATOR.join(("1", "john", "J500"))
    a = frozenset({phone, KEY_SEPARATOR.join(("1", "ann", "L000"))})
    b = frozenset({phone, name})
    c = frozenset({name})
    assert module.missed_kind(a, c, {}, RULES, 50) == module.NO_SHARED_KEY
    # the phone block holds 60 profiles: over --max_block_size 50, it makes no pairs
    assert module.missed_kind(a, b, {phone: 60}, RULES, 50) == module.ONLY_CAPPED
    assert module.missed_kind(a, b, {phone: 40}, RULES, 50) == module.OUTSIDE_WINDOWS
    # a windowed rule's own limit (1,000) is its limit, not --max_block_size
    assert module.missed_kind(b, c, {name: 600}, RULES, 50) == module.OUTSIDE_WINDOWS
    assert module.missed_kind(b, c, {name: 1001}, RULES, 50) == module.ONLY_CAPPED
    # one of the shared keys in a block that pairs is enough
    assert module.missed_kind(b, b, {phone: 60, name: 600}, RULES, 50) == module.OUTSIDE_WINDOWS


def test_agree_beyond_names_looks_past_the_names():
    module = _load()
    john = _features(1, "John", "Smith")
    assert not module.agree_beyond_names(john, _features(2, "John", "Smith"))
    assert not module.agree_beyond_names(_features(3, "John", "Smith", birth="1980-01-02"),
                                         _features(4, "John", "Smith", birth="1980-02-01"))
    assert module.agree_beyond_names(_features(5, "John", "Smith", birth="1980-01-02"),
                                     _features(6, "Jon", "Smyth", birth="1980-01-02"))
    assert module.agree_beyond_names(_features(7, "John", "Smith", phone="+1 415 555 2671"),
                                     _features(8, "John", "Smith", phone="(415) 555-2671"))


def test_missed_rows_count_each_true_pair_left_out_once():
    module = _load()
    features = [
        _features(0, "John", "Smith", phone="+1 415 555 2671"),   # 0-1: same phone, made by the phone block
        _features(1, "Jon", "Smith", phone="+1 415 555 2671"),
        _features(2, "Ann", "Lee"),                               # 2-3: share no key
        _features(3, "Bea", "Kim"),
        _features(4, "Tom", "Ray"),                                # 4-5-6: one name block, sorted 4, 5, 6
        _features(5, "Tom", "Ray"),
        _features(6, "Tom", "Ray", birth="1990-03-04"),
    ]
    cluster = np.array([0, 0, 1, 1, 2, 2, 2])
    n = len(features)
    blocks = module.rule_blocks(features, RULES)
    codes = np.unique(np.concatenate([module.rule_pairs(features, RULES, i, blocks[i], 50) for i in range(len(RULES))]))
    # at window 1 the name block makes 4-5 and 5-6, not 4-6: 4-6 is reached through 5
    assert sorted(codes.tolist()) == [0 * n + 1, 4 * n + 5, 5 * n + 6]
    rows = {kind: (count, reached, names_only)
            for kind, count, reached, names_only in module.missed_rows(features, cluster, codes, blocks, RULES, 50)}
    assert rows[module.NO_SHARED_KEY] == (1, 0, 1)
    assert rows[module.OUTSIDE_WINDOWS] == (1, 1, 1)
    assert rows[module.ONLY_CAPPED] == (0, 0, 0)
    # the same profiles with the name rule limited to blocks of 2: its block of three is capped
    small = [RULES[0], dict(RULES[1], max_block_size=2)]
    assert module.rule_pairs(features, small, 1, blocks[1], 50).size == 0
    codes = module.rule_pairs(features, small, 0, blocks[0], 50)
    rows = {kind: count for kind, count, *_ in module.missed_rows(features, cluster, codes, blocks, small, 50)}
    assert rows == {module.NO_SHARED_KEY: 1, module.ONLY_CAPPED: 3, module.OUTSIDE_WINDOWS: 0}
    assert set(block_keys(features[4], RULES)) == set(block_keys(features[5], RULES))


def test_script_tables_add_up_on_generated_profiles(tmp_path, capsys):
    module = _load()
    profiles, truth = generated_profiles(tmp_path, 3000, seed=11)
    assert module.main(["--profiles", str(profiles), "--truth", str(truth), "--processes", "1"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    true_pairs = int(lines[0].split(" true pairs")[0].split(", ")[1].replace(",", ""))
    shipped = next(line for line in lines if line.startswith("model as shipped")).split()
    direct = float(shipped[-2])
    missed = [line.split() for line in lines if line.startswith(("  no shared key", "  only capped", "  outside"))]
    assert len(missed) == 3
    # every true pair is either made or left out for exactly one reason
    left_out = sum(int(row[-4].replace(",", "")) for row in missed)
    assert abs(direct - (1 - left_out / true_pairs)) < 1e-4
    for row in missed:
        count, reached, names_only = (int(row[i].replace(",", "")) for i in (-4, -2, -1))
        assert reached <= count and names_only <= count
