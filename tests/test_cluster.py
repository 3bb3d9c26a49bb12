"""Tests for transforms/cluster.py: union-find, the components CombineFn on 2 workers, star
contraction against it, resolution."""
from __future__ import annotations

import json
import random

import apache_beam as beam
import pytest
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from tests.helpers import fitted_model, member, pid
from transforms.choose import Policy
from transforms.cluster import (
    ConnectedComponents,
    ConnectedComponentsFn,
    ResolveClusters,
    StarComponents,
    UnionFind,
    _ResolveFn,
    large_star,
    refuse_unsendable,
    resolve_component,
    small_star,
    star_label,
    union_find_components,
)
from transforms.compare import Scorer, compare_batch, comparison_vectors, score_batch

# ------------------------------------------------------------------ union-find


def test_union_find_components():
    edges = [("b", "a"), ("c", "b"), ("x", "y"), ("d", "d"), ("a", "c"), ("y", "x")]
    assert union_find_components(edges) == [["a", "b", "c"], ["d"], ["x", "y"]]
    assert union_find_components([]) == []


def test_union_find_long_chain_and_star():
    chain = [(i, i + 1) for i in range(1000)]
    random.Random(2).shuffle(chain)
    star = [(5000, 5001 + i) for i in range(50)]
    components = union_find_components(chain + star)
    assert components == [list(range(1001)), [5000] + list(range(5001, 5051))]


def test_union_find_size_and_roots():
    forest = UnionFind()
    forest.union(1, 2)
    forest.union(3, 4)
    forest.union(2, 4)
    assert forest.find(1) == forest.find(3)
    assert forest.size[forest.find(1)] == 4
    assert forest.find(9) == 9


def acc(edges):
    fn = ConnectedComponentsFn()
    accumulator = fn.create_accumulator()
    for edge in edges:
        accumulator = fn.add_input(accumulator, edge)
    return accumulator


def test_merge_accumulators_with_hand_made_accumulators():
    fn = ConnectedComponentsFn()
    # a-b-c-d-e split over three workers; f-g alone; h-i on a worker that also saw part of the chain
    merged = fn.merge_accumulators([acc([("a", "b"), ("f", "g")]), acc([("c", "d"), ("h", "i")]),
                                    acc([("b", "c"), ("d", "e")])])
    assert fn.extract_output(merged) == [["a", "b", "c", "d", "e"], ["f", "g"], ["h", "i"]]


def test_merge_accumulators_order_does_not_matter_and_empty_accumulators():
    fn = ConnectedComponentsFn()
    edges = [(i, i + 1) for i in range(0, 40, 2)] + [(i, i + 1) for i in range(1, 40, 2)] + [(100, 101)]
    expected = [list(range(41)), [100, 101]]
    rng = random.Random(4)
    for _ in range(5):
        rng.shuffle(edges)
        parts = [edges[i::4] for i in range(4)]
        accumulators = [acc(part) for part in parts] + [fn.create_accumulator()]
        rng.shuffle(accumulators)
        assert fn.extract_output(fn.merge_accumulators(accumulators)) == expected
    # merging partial merges (a runner may merge in several rounds)
    left = fn.merge_accumulators([acc(edges[:20]), acc(edges[20:30])])
    right = fn.merge_accumulators([acc(edges[30:])])
    assert fn.extract_output(fn.merge_accumulators([right, left])) == expected
    assert fn.extract_output(fn.merge_accumulators([fn.create_accumulator()])) == []


class CountingComponentsFn(ConnectedComponentsFn):
    """ConnectedComponentsFn that counts how many accumulators were merged (to prove merging ran)."""

    def merge_accumulators(self, accumulators):
        accumulators = list(accumulators)
        Metrics.counter("test", "merge_calls").inc()
        Metrics.counter("test", "accumulators_merged").inc(len(accumulators))
        return super().merge_accumulators(accumulators)


def test_connected_components_on_two_worker_processes():
    ids = [pid(i) for i in range(1, 401)]
    # four chains of 100 ids, edges shuffled and spread over many elements and bundles
    edges = [(ids[i], ids[i + 1]) for i in range(400 - 1) if (i + 1) % 100]
    random.Random(1).shuffle(edges)
    expected = [ids[k:k + 100] for k in range(0, 400, 100)]
    options = PipelineOptions(["--runner=FnApiRunner", "--direct_running_mode=multi_processing",
                               "--direct_num_workers=2"])
    p = beam.Pipeline(options=options)
    spread = p | beam.Create(edges, reshuffle=True) | beam.Reshuffle()
    components = spread | "Components" >> beam.CombineGlobally(CountingComponentsFn())
    assert_that(components, equal_to([expected]), label="Components")
    assignment = spread | "Assign" >> ConnectedComponents()
    assert_that(assignment, equal_to([(i, group[0]) for group in expected for i in group]), label="Assignment")
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in
                result.metrics().query(MetricsFilter().with_namespace("test"))["counters"]}
    # partial results from several bundles/workers were merged, not one accumulator fed every edge
    assert counters.get("accumulators_merged", 0) >= 2


# ------------------------------------------------------------------ star contraction


def test_large_and_small_star_steps():
    assert sorted(large_star(5, {2, 7, 9})) == [(7, 2), (9, 2)]
    assert large_star(5, {1, 3}) == []                       # no larger neighbour
    assert sorted(small_star(5, {2, 3, 7})) == [(3, 2), (5, 2)]
    assert small_star(5, {7, 9}) == []                       # no smaller neighbour


def test_star_label_says_when_a_node_has_settled():
    assert star_label(1, {4, 6}) == (1, 1, True)    # a centre
    assert star_label(4, {1}) == (4, 1, True)       # a leaf of it
    assert star_label(4, {1, 9}) == (4, 1, False)   # still linked to another
    assert star_label(4, {2}) == (4, 2, True)       # locally settled; its neighbour decides


def _simulate(edges, rounds):
    """The rounds without Beam, to check the steps keep every component."""
    from collections import defaultdict

    for _ in range(rounds):
        for step in (large_star, small_star):
            adj = defaultdict(set)
            for a, b in edges:
                adj[a].add(b)
                adj[b].add(a)
            edges = {tuple(e) for u, nb in adj.items() for e in step(u, nb)}
    return edges


def _graphs():
    rng = random.Random(5)
    ids = [pid(i) for i in range(1, 601)]
    shuffled = ids[:]
    rng.shuffle(shuffled)
    path = [(shuffled[i], shuffled[i + 1]) for i in range(199)]                         # 200 in a line
    sorted_path = [(ids[200 + i], ids[201 + i]) for i in range(99)]                    # the worst order
    tree = [(shuffled[300 + i], shuffled[300 + rng.randrange(i)]) for i in range(1, 150)]
    clique = [(a, b) for k, a in enumerate(ids[450:460]) for b in ids[451 + k:460]]
    pairs = [(ids[460 + 2 * i], ids[461 + 2 * i]) for i in range(40)] + [(ids[461], ids[460])]  # repeated
    return path + sorted_path + tree + clique + pairs


def test_star_rounds_keep_the_components():
    edges = _graphs()
    assert union_find_components(_simulate(set(edges), 2)) == union_find_components(edges)


def test_star_components_of_no_edges_are_none():
    with beam.Pipeline(runner="FnApiRunner") as p:
        assert_that(p | beam.Create([]) | StarComponents(2), equal_to([]))


@pytest.mark.parametrize("rounds", [12, 2])
def test_star_components_match_the_union_find_on_two_worker_processes(rounds):
    # 12 rounds settle every graph here; 2 leave the long paths unsettled, and the union-find finishes
    edges = _graphs()
    expected = sorted((m, group[0]) for group in union_find_components(edges) for m in group)
    options = PipelineOptions(["--runner=FnApiRunner", "--direct_running_mode=multi_processing",
                               "--direct_num_workers=2"])
    p = beam.Pipeline(options=options)
    assignment = p | beam.Create(edges, reshuffle=True) | beam.Reshuffle() | StarComponents(rounds)
    assert_that(assignment, equal_to(expected))
    result = p.run()
    result.wait_until_finish()
    unsettled = sum(c.committed for c in result.metrics().query(
        MetricsFilter().with_namespace("components").with_name("unsettled_nodes"))["counters"])
    assert (unsettled > 0) == (rounds == 2), unsettled


# ------------------------------------------------------------------ resolution

POLICY = Policy()
MATCH, MEMBER, MAX = 0.99, 0.95, 50


def resolve(profiles, scorer=None, max_cluster_size=MAX, identifiers=()):
    scorer = scorer or Scorer(fitted_model())
    return resolve_component([member(p, identifiers) for p in profiles], scorer, POLICY, MATCH, MEMBER,
                             max_cluster_size, "test-domain")


def person(n, **fields):
    profile = {"ProfileId": pid(n), "FirstName": "John", "LastName": "Smith", "PhoneNumber": "+1 415 555 2671",
               "EmailAddress": "john.smith77@example.com"}
    profile.update(fields)
    return {k: v for k, v in profile.items() if v is not None}


def merged_groups(records):
    return [sorted(r["members"]) for r in records if r["kind"] == "merge"]


def assert_each_profile_once(records, profiles):
    seen = []
    for r in records:
        if r["kind"] == "merge":
            seen.extend(r["members"])
        elif r["kind"] == "split":
            seen.append(r["profile"])
        else:
            seen.extend(r["members"])
    assert sorted(seen) == sorted(p["ProfileId"] for p in profiles)


def test_duplicates_merge_around_the_main():
    profiles = [person(1, BirthDate="1980-03-01", Attributes={"a": "1", "b": "2"}), person(2), person(3, Gender="MALE")]
    records = resolve(profiles)
    assert merged_groups(records) == [[pid(1), pid(2), pid(3)]]
    [group] = records
    assert group["main"] == pid(1)        # most complete
    assert "most complete" in group["main_reason"]
    assert len(group["edges"]) == 3
    for edge in group["edges"]:
        assert edge["probability"] >= MATCH and edge["blocked_by"] == []
        assert set(edge["fields"]) == {c["name"] for c in fitted_model()["comparisons"]}
    [request] = group["requests"]
    assert request["MainProfileId"] == pid(1)
    assert sorted(request["ProfileIdsToBeMerged"]) == [pid(2), pid(3)]
    assert group["split_off"] == []


def chain():
    """A ~ B and B ~ C strongly (B holds one phone and one email of each), A and C two different John Smiths."""
    a = person(1, BirthDate="1980-03-01", PhoneNumber="+1 415 555 2671", EmailAddress="john.smith.a@example.com",
               Address={"Address1": "1 Main St", "City": "Springfield", "PostalCode": "62701", "Country": "US"})
    b = person(2, PhoneNumber="+1 415 555 2671", MobilePhoneNumber="+1 212 555 0299",
               EmailAddress="john.smith.a@example.com", PersonalEmailAddress="jsmith.c@example.org")
    c = person(3, BirthDate="1986-09-20", PhoneNumber="+1 212 555 0299", EmailAddress="jsmith.c@example.org",
               Address={"Address1": "99 Oak Avenue", "City": "Portland", "PostalCode": "97201", "Country": "US"})
    return a, b, c


@pytest.mark.parametrize("guards", ["none", "shipped"])
def test_chained_strangers_are_split(guards):
    # "none": no guard at all, so only the scores can keep A and C apart;
    # "shipped": the guards of the default model as they are now
    model = fitted_model(default_guards=guards == "shipped")
    if guards == "none":
        model["guards"] = []
    scorer = Scorer(model)
    a, b, c = chain()
    # preconditions: A~B and B~C merge on their own; A and C alone score far below any threshold
    assert merged_groups(resolve([a, b], scorer)) == [[pid(1), pid(2)]]
    assert merged_groups(resolve([b, c], scorer)) == [[pid(2), pid(3)]]
    direct = resolve_component([member(a), member(c)], scorer, POLICY, MATCH, MEMBER, MAX, "d")
    assert [r["kind"] for r in direct] == ["split", "split"] and direct[0]["best_probability"] < 0.05

    records = resolve([a, b, c], scorer)
    for group in merged_groups(records):
        assert not {pid(1), pid(3)} <= set(group), f"A and C merged through B: {group}"
    assert_each_profile_once(records, [a, b, c])


def test_main_vouches_for_members_whose_names_disagree_only_with_each_other():
    # Liz and Betty are both nicknames of the main's Elizabeth: Liz and Betty disagree on the first
    # name (and on their emails) and alone score far below any threshold, but each matches the
    # main, which agrees with each of them on the first name (one value per profile). The emails
    # are sets: a main holding both cannot vouch for them, so one disagreement is left, not two.
    home = {"Address1": "5 Mill Lane", "City": "Birmingham", "PostalCode": "B1 1AA", "Country": "GB"}
    m = person(1, FirstName="Elizabeth", LastName="Kelly", BirthDate="1980-10-09", EmailAddress="liz.k@example.com",
               PhoneNumber="+44 20 7946 0018", Gender="FEMALE", Address=home)
    a = person(2, FirstName="Liz", LastName="Kelly", BirthDate="1980-10-09", EmailAddress="liz.k@example.com",
               PhoneNumber=None)
    c = person(3, FirstName="Betty", LastName="Kelly", EmailAddress="bettyk@example.org",
               PhoneNumber="+44 20 7946 0018", Gender="FEMALE", Address=home)
    scorer = Scorer(fitted_model())

    def probability(x, y):
        batch = score_batch(scorer, compare_batch(scorer.model, [(member(x)[1], member(y)[1], ("test",))]))
        return float(batch["probabilities"][0])

    assert probability(m, a) >= MATCH and probability(m, c) >= MATCH
    assert probability(a, c) < 0.01
    assert merged_groups(resolve([m, a, c], scorer)) == [[pid(1), pid(2), pid(3)]]
    # a main without a first name cannot vouch for theirs: two disagreements, strangers again
    no_name = dict(m, FirstName=None)
    del no_name["FirstName"]
    assert probability(no_name, a) >= MATCH and probability(no_name, c) >= MATCH
    records = resolve([no_name, a, c], scorer)
    assert [len(g) for g in merged_groups(records)] == [2]
    assert_each_profile_once(records, [no_name, a, c])


def test_family_behind_a_shared_contact_is_split_when_the_main_has_no_birth_date():
    # main M has no birth date; father A and son C both match M, but A/C are a generation apart (a guard)
    m = person(1, Attributes={"a": "1", "b": "2", "c": "3", "d": "4"})
    a, c = person(2, BirthDate="1952-01-01"), person(3, BirthDate="1978-01-01")
    records = resolve([m, a, c])
    groups = merged_groups(records)
    assert len(groups) == 1 and len(groups[0]) == 2 and pid(1) in groups[0]
    [split] = [r for r in records if r["kind"] == "split"]
    assert split["profile"] in (pid(2), pid(3))
    assert_each_profile_once(records, [m, a, c])


def test_guard_between_members_does_not_block_when_the_main_has_the_field():
    # the main's birth date is within 15 years of both: each was checked against it, so the
    # members' own guard (26 years apart) does not block
    m = person(1, BirthDate="1965-06-01", Attributes={"a": "1", "b": "2", "c": "3", "d": "4"})
    a, c = person(2, BirthDate="1952-01-01"), person(3, BirthDate="1978-01-01")
    scorer = Scorer(fitted_model())
    guard_between_members = resolve_component([member(a), member(c)], scorer, POLICY, MATCH, MEMBER, MAX, "d")
    assert all(r["kind"] == "split" for r in guard_between_members)  # a and c alone never merge
    assert merged_groups(resolve([m, a, c], scorer)) == [[pid(1), pid(2), pid(3)]]


def _thin_members():
    """A main with a phone, an email and an address (no birth date), and two thin duplicates: one
    shares only its phone, the other only its email. Between themselves they share nothing but names."""
    address = {"Address1": "1 Main St", "City": "Springfield", "PostalCode": "62701", "Country": "US"}
    m = person(1, Address=address, Gender="MALE")
    a = person(2, EmailAddress=None)
    c = person(3, PhoneNumber=None)
    return m, a, c


def test_main_settles_a_lack_of_evidence_guard_between_members():
    # "nothing but names" says a pair has too little evidence, not that it differs: two thin
    # duplicates that each match the main (phone / email) merge through it, birth date or not
    model = fitted_model(default_guards=True)
    scorer = Scorer(model)
    m, a, c = _thin_members()
    between = resolve_component([member(a), member(c)], scorer, POLICY, MATCH, MEMBER, MAX, "d")
    assert all(r["kind"] == "split" for r in between)  # alone, names are not enough
    assert merged_groups(resolve([m, a, c], scorer)) == [[pid(1), pid(2), pid(3)]]
    # without main_settles the main (no birth date) could not settle it: one of them is split off
    for guard in model["guards"]:
        guard.pop("main_settles", None)
    records = resolve([m, a, c], Scorer(model))
    assert [len(g) for g in merged_groups(records)] == [2]
    assert_each_profile_once(records, [m, a, c])


def test_main_does_not_settle_a_disagreement_guard_without_the_field():
    # a guard about disagreement (birth dates a generation apart) still blocks between members
    # under a main without a birth date, with the shipped guards too
    m = person(1, Attributes={"a": "1", "b": "2", "c": "3", "d": "4"})
    a, c = person(2, BirthDate="1952-01-01"), person(3, BirthDate="1978-01-01")
    records = resolve([m, a, c], Scorer(fitted_model(default_guards=True)))
    assert [len(g) for g in merged_groups(records)] == [2]


def test_cluster_above_max_cluster_size_is_held_never_merged():
    profiles = [person(n) for n in range(1, 6)]
    records = resolve(profiles, max_cluster_size=4)
    assert [r["kind"] for r in records] == ["held"]
    assert records[0]["members"] == [pid(n) for n in range(1, 6)] and records[0]["size"] == 5
    assert "max_cluster_size 4" in records[0]["reason"]
    assert merged_groups(resolve(profiles, max_cluster_size=5)) == [[pid(n) for n in range(1, 6)]]


def test_different_profile_types_are_never_merged():
    profiles = [person(1, ProfileType="ACCOUNT_PROFILE"), person(2, ProfileType="PROFILE"), person(3)]
    records = resolve(profiles)
    for group in merged_groups(records):
        assert pid(1) not in group
    assert merged_groups(records) == [[pid(2), pid(3)]]
    assert_each_profile_once(records, profiles)
    # two profiles only, identical but for the type: nothing merges
    assert merged_groups(resolve([person(1, ProfileType="ACCOUNT_PROFILE"), person(2)])) == []


def test_different_identifiers_are_never_merged():
    profiles = [person(1, AccountNumber="A-1"), person(2, AccountNumber="A-2"), person(3)]
    records = resolve(profiles, identifiers=("AccountNumber",))
    for group in merged_groups(records):
        assert not {pid(1), pid(2)} <= set(group)
    assert_each_profile_once(records, profiles)


def test_hard_conflict_between_two_members_blocks_even_through_a_main():
    # the main has no ProfileType; a business account and a person both look like it
    m = person(1, Attributes={"a": "1", "b": "2", "c": "3", "d": "4"})
    records = resolve([m, person(2, ProfileType="PROFILE"), person(3, ProfileType="ACCOUNT_PROFILE")])
    for group in merged_groups(records):
        assert not {pid(2), pid(3)} <= set(group)


def test_resolve_clusters_transform():
    model = fitted_model()
    profiles = [person(1, Attributes={"a": "1"}), person(2), person(3, ProfileType="ACCOUNT_PROFILE")]
    big = [person(n) for n in range(10, 14)]
    grouped = [(pid(1), [member(p) for p in profiles]), (pid(10), [member(p) for p in big])]
    with beam.Pipeline(runner="FnApiRunner") as p:
        model_view = beam.pvalue.AsSingleton(p | "Model" >> beam.Create([model]))
        out = p | beam.Create(grouped) | ResolveClusters(model_view, POLICY, MATCH, MEMBER, 3, "test-domain")
        assert_that(out.clusters | beam.Map(lambda r: (r["kind"], r["cluster_id"])),
                    equal_to([("merge", pid(1)), ("split", pid(1)), ("held", pid(10))]), label="Clusters")
        assert_that(out.plan, equal_to([{"DomainName": "test-domain", "MainProfileId": pid(1),
                                         "ProfileIdsToBeMerged": [pid(2)]}]), label="Plan")
        assert_that(out.review | beam.Map(lambda r: r["kind"]), equal_to(["split_off", "held_cluster"]), label="Review")


def test_resolving_components_in_batches_gives_what_one_at_a_time_gives(tmp_path):
    model = fitted_model()
    scorer = Scorer(model)
    # components of 1..5 near-identical people with a few differences, one too big to merge
    components = []
    for c in range(12):
        size = 2 + c % 4
        people = [person(100 * c + k, FirstName=["John", "Jon", "Kevin"][k % 3], ProfileType="ACCOUNT_PROFILE" if k == 4 else "PROFILE")
                  for k in range(size)]
        components.append((pid(100 * c), [member(p) for p in people]))
    components.append((pid(9000), [member(person(9000 + k)) for k in range(MAX + 1)]))
    expected = sorted(
        json.dumps(record, sort_keys=True, default=str)
        for component_id, members in components
        for record in resolve_component(members, scorer, POLICY, MATCH, MEMBER, MAX, "test-domain"))
    assert any('"kind": "merge"' in r for r in expected) and any('"kind": "split"' in r for r in expected)
    for batch_pairs in (1, 7, 100_000):
        with beam.Pipeline(runner="FnApiRunner") as p:
            model_view = beam.pvalue.AsSingleton(p | "Model" >> beam.Create([model]))
            out = p | beam.Create(components) | ResolveClusters(model_view, POLICY, MATCH, MEMBER, MAX, "test-domain",
                                                              batch_pairs=batch_pairs)
            assert_that(out.clusters | beam.Map(lambda r: json.dumps({k: v for k, v in r.items() if k != "cluster_id"},
                                                                     sort_keys=True, default=str)),
                        equal_to(expected))


def _two_phones(first_name_of_c="John", birth_date=None):
    """A main with two phones (home and mobile) and an email; member A shares its home phone,
    member C its mobile. Between A and C the phones differ and nothing else identifies one person
    (the "namesakes: different phones" guard)."""
    m = person(1, MobilePhoneNumber="+1 212 555 0299", BirthDate=birth_date)
    a = person(2, EmailAddress=None)
    c = person(3, PhoneNumber="+1 212 555 0299", EmailAddress=None, FirstName=first_name_of_c, BirthDate=birth_date)
    return m, a, c


def test_main_with_both_phones_settles_the_namesakes_guard_between_members():
    model = fitted_model(default_guards=True)
    scorer = Scorer(model)
    m, a, c = _two_phones()
    pattern = comparison_vectors(model, [member(a)[1]], [member(c)[1]])[0]
    assert "namesakes: different phones" in scorer.guards(pattern)
    assert merged_groups(resolve([m, a, c], scorer)) == [[pid(1), pid(2), pid(3)]]
    # the guard's own main_settles is what lets the main settle it: settled on every comparison of
    # its "when", a main without a birth date or an address could not, and one member is split off
    for guard in model["guards"]:
        if guard["name"] == "namesakes: different phones":
            guard.pop("main_settles")
    assert [len(g) for g in merged_groups(resolve([m, a, c], Scorer(model)))] == [2]


def test_main_does_not_settle_the_namesakes_guard_for_a_member_without_a_first_name():
    # C, without a first name, matches the main on its last name, a phone and the birth date: but
    # that is also what another member of the household (sharing the landline) may look like, and
    # the main cannot tell that C is the same person as A, whose phone C does not have
    scorer = Scorer(fitted_model(default_guards=True))
    m, a, c = _two_phones(first_name_of_c=None, birth_date="1980-05-17")
    assert merged_groups(resolve([m, c], scorer)) == [[pid(1), pid(3)]]  # C alone matches the main
    records = resolve([m, a, c], scorer)
    assert [len(g) for g in merged_groups(records)] == [2]
    assert_each_profile_once(records, [m, a, c])


# A household at one address: the main and A (a copy of it with a birth date and an email) are
# one person; C has no first name, shares A's birth date and email and the address, and has
# nothing personal to compare with the main (which has no birth date and no email).
HOME = {"Address1": "8 Elm Road", "City": "Leeds", "PostalCode": "LS1 4AP", "Country": "GB"}
DEFAULT_MEMBER = 0.5  # --cluster_member_threshold's default


def _household(**of_c):
    m = person(1, PhoneNumber="+44 113 496 0123", EmailAddress=None, Address=HOME)
    a = person(2, PhoneNumber="+44 113 496 0123", EmailAddress="j.smith.leeds@example.com",
               BirthDate="1971-04-02", Address=HOME)
    c = person(3, FirstName=None, PhoneNumber=None, EmailAddress="j.smith.leeds@example.com",
               BirthDate="1971-04-02", Address=HOME)
    c.update(of_c)
    return m, a, {k: v for k, v in c.items() if v is not None}


def _resolve_default(profiles, scorer, member_threshold=DEFAULT_MEMBER):
    return resolve_component([member(p) for p in profiles], scorer, POLICY, MATCH, member_threshold, MAX, "d")


def _probability(scorer, x, y):
    batch = score_batch(scorer, compare_batch(scorer.model, [(member(x)[1], member(y)[1], ("test",))]))
    return float(batch["probabilities"][0])


def test_member_vouches_for_a_profile_the_main_has_nothing_personal_to_compare_with():
    model = fitted_model(default_guards=True)
    scorer = Scorer(model)
    m, a, c = _household()
    pattern = comparison_vectors(model, [member(c)[1]], [member(m)[1]])[0]
    assert list(scorer.guards(pattern)) == ["a family name and a household"]
    assert DEFAULT_MEMBER <= _probability(scorer, c, m) < MATCH
    assert _probability(scorer, c, a) >= MATCH and _probability(scorer, a, m) >= MATCH
    assert merged_groups(_resolve_default([m, c], scorer)) == []  # alone, the guard holds

    records = _resolve_default([m, a, c], scorer)
    [group] = [r for r in records if r["kind"] == "merge"]
    assert sorted(group["members"]) == [pid(1), pid(2), pid(3)] and group["main"] == pid(1)
    [vouched] = group["vouched"]
    assert vouched["profile"] == pid(3) and vouched["by"] == pid(2)
    assert vouched["guards"] == ["a family name and a household"]
    assert vouched["evidence"] == {"birth_date": "exact", "email": "same address"}
    [to_main] = [e for e in group["edges"] if {e["a"], e["b"]} == {pid(1), pid(3)}]
    assert to_main["settled_by"] == pid(2) and to_main["blocked_by"] == ["guard: a family name and a household"]
    assert all("settled_by" not in e for e in group["edges"] if pid(3) not in (e["a"], e["b"]))
    assert_each_profile_once(records, [m, a, c])


@pytest.mark.parametrize("case", ["main disagrees on the email", "member agrees on no settling level",
                                  "member disagrees on a settling field",
                                  "a loose first name", "below the member threshold", "guard not member-settled"])
def test_member_does_not_vouch(case):
    model = fitted_model(default_guards=True)
    member_threshold = DEFAULT_MEMBER
    m, a, c = _household()
    if case == "main disagrees on the email":
        # the main has an email, and it is not C's (C shares the landline, to match the main well enough)
        m["EmailAddress"] = "someone.else@example.org"
        c["PhoneNumber"] = m["PhoneNumber"]
    elif case == "member agrees on no settling level":
        # A agrees with C on the birth date and the email, but only an account number would settle it
        for guard in model["guards"]:
            if guard.get("member_settles"):
                guard["member_settles"]["by"] = {"account_number": ["exact"]}
    elif case == "member disagrees on a settling field":
        # a twin: A's birth date and mobile (a family plan), an email of its own
        c.update(EmailAddress="jane.w@example.org", MobilePhoneNumber="+44 7911 123456")
        a["MobilePhoneNumber"] = "+44 7911 123456"
    elif case == "a loose first name":
        c["FirstName"] = "Jonah"  # like John, not John: the guard is about a difference, not a lack
    elif case == "below the member threshold":
        member_threshold = 0.9  # C must still match the main itself well enough
    else:
        for guard in model["guards"]:
            guard.pop("member_settles", None)
    scorer = Scorer(model)
    assert _probability(scorer, c, a) >= MATCH
    # C matches the main well enough but for the guard (the threshold case: only but for the threshold)
    assert _probability(scorer, c, m) >= (DEFAULT_MEMBER if case == "below the member threshold" else member_threshold)
    records = _resolve_default([m, a, c], scorer, member_threshold)
    assert [len(group) for group in merged_groups(records)] == [2]
    assert all("vouched" not in r for r in records)
    assert_each_profile_once(records, [m, a, c])


def test_a_main_without_a_first_name_is_vouched_for_by_no_member():
    # X has no first name (a household member sharing the landline, a London fixed line); K and I are one person (the
    # same birth date and email), and K, without an address, matches X on the phone and last name
    # alone. Around X, I (a first name, the address) trips the household guard; K must not vouch
    # for I there: the guard is settled for a profile that lacks the first name, under a main that has one
    x = person(1, FirstName=None, PhoneNumber="+44 20 7946 0018", EmailAddress=None, Address=HOME, Gender="MALE",
               Attributes={"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6"})
    k = person(2, PhoneNumber="+44 20 7946 0018", EmailAddress="j.smith.leeds@example.com", BirthDate="1971-04-02",
               Gender="MALE")
    i = person(3, PhoneNumber="+44 20 7946 0018", EmailAddress="j.smith.leeds@example.com", BirthDate="1971-04-02",
               Address=HOME)
    x = {key: v for key, v in x.items() if v is not None}
    model = fitted_model(default_guards=True)
    phone = next(c for c in model["comparisons"] if c["name"] == "phone")
    next(level for level in phone["levels"] if level["label"] == "same fixed line")["u"] = 0.001  # a rare line
    scorer = Scorer(model)
    assert list(scorer.guards(comparison_vectors(model, [member(i)[1]], [member(x)[1]])[0])) == \
        ["a family name and a household"]
    assert _probability(scorer, k, x) >= MATCH and _probability(scorer, i, k) >= MATCH
    records = _resolve_default([x, k, i], scorer)
    assert [len(group) for group in merged_groups(records)] == [2]
    assert all("vouched" not in r for r in records)
    assert_each_profile_once(records, [x, k, i])


def _merge_record(sources: dict) -> dict:
    return {"kind": "merge", "main": pid(1), "main_reason": "most complete", "members": [pid(1), pid(2)],
            "edges": [{"a": pid(1), "b": pid(2)}], "choices": {},
            "requests": [{"DomainName": "d", "MainProfileId": pid(1), "ProfileIdsToBeMerged": [pid(2)],
                          "FieldSourceProfileIds": sources}]}


def test_a_group_whose_request_would_be_refused_is_held_for_review_not_planned():
    fine = _merge_record({"FirstName": pid(2), "Attributes": {"tier": pid(2)}})
    assert refuse_unsendable(fine) is fine
    # botocore refuses an empty Attributes key; the plan must hold only lines that can be sent
    held = refuse_unsendable(_merge_record({"Attributes": {"": pid(2)}}))
    assert held["kind"] == "held" and held["size"] == 2 and "requests" not in held
    assert held["reason"].startswith("its merge request would be refused: ") and "Attributes" in held["reason"]
    assert held["edges"] == fine["edges"]   # the evidence stays for the reviewer
    outputs = list(_ResolveFn(Policy(), 0.95, 0.5, 50, "d")._outputs("c1", [_merge_record({"Attributes": {"": pid(2)}})]))
    assert [tag for tag, _ in outputs] == ["review", None]
    assert outputs[0][1]["kind"] == "held_cluster" and outputs[0][1]["members"] == [pid(1), pid(2)]
    assert outputs[1][1]["kind"] == "held" and outputs[1][1]["cluster_id"] == "c1"
    planned = list(_ResolveFn(Policy(), 0.95, 0.5, 50, "d")._outputs("c1", [_merge_record({"FirstName": pid(2)})]))
    assert [tag for tag, _ in planned] == ["plan", None]
