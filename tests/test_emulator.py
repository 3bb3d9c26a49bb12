"""The Customer Profiles emulator, driven through a real boto3 client."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from emulator import start_emulator
from emulator.model import MERGE_SOURCE_FIELDS

REPO = Path(__file__).resolve().parents[1]
# botocore reads Config(retries={'max_attempts': N}) as N *retries* (N + 1 attempts);
# 'total_max_attempts': 1 is what sends each request exactly once.
NO_RETRIES = Config(retries={'total_max_attempts': 1, 'mode': 'standard'})


def pid(n: int) -> str:
    return f'{n:032x}'


def client(emu, config: Config | None = NO_RETRIES):
    """A plain boto3 client; ``emu`` is an Emulator or a URL."""
    return boto3.client(
        'customer-profiles', endpoint_url=getattr(emu, 'url', emu), region_name='us-east-1',
        aws_access_key_id='testing', aws_secret_access_key='testing', config=config,
    )


def error_code_of(exc: botocore.exceptions.ClientError) -> str:
    return exc.response['Error']['Code']


@pytest.fixture
def emu_factory():
    started = []

    def make(profiles=(), **kwargs):
        emu = start_emulator(profiles, **kwargs)
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


def by_id(emu) -> dict:
    return {p['ProfileId']: p for p in emu.profiles()}


# --------------------------------------------------------------------- create / update / read

def test_create_update_batch_get(emu_factory):
    emu = emu_factory()
    c = client(emu)
    created = c.create_profile(
        DomainName='demo', FirstName='Ada', LastName='Lovelace', EmailAddress='ada@x.org',
        Address={'City': 'London', 'Country': 'UK'}, Attributes={'tier': 'gold', 'src': 'crm'},
        ProfileType='PROFILE',
    )['ProfileId']
    assert len(created) == 32
    c.update_profile(
        DomainName='demo', ProfileId=created, LastName='', MiddleName='King',
        Address={'City': 'Paris'}, Attributes={'tier': '', 'src': 'web'},
    )
    answer = c.batch_get_profile(DomainName='demo', ProfileIds=[created, pid(999)])
    (profile,) = answer['Profiles']
    assert profile == {
        'ProfileId': created, 'FirstName': 'Ada', 'MiddleName': 'King', 'EmailAddress': 'ada@x.org',
        'Address': {'City': 'Paris', 'Country': 'UK'}, 'Attributes': {'src': 'web'},
        'ProfileType': 'PROFILE',
    }
    assert answer['Errors'] == [
        {'Code': 'ResourceNotFoundException', 'Message': answer['Errors'][0]['Message'], 'ProfileId': pid(999)}
    ]
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.update_profile(DomainName='demo', ProfileId=pid(999), FirstName='x')
    with pytest.raises(c.exceptions.BadRequestException):  # 21 ids: botocore does not check the max
        c.batch_get_profile(DomainName='demo', ProfileIds=[pid(i) for i in range(1, 22)])
    with pytest.raises(c.exceptions.BadRequestException):  # enum checked by the server
        c.create_profile(DomainName='demo', Gender='unknown')


def test_domains(emu_factory):
    emu = emu_factory([{'ProfileId': pid(1)}, {'ProfileId': pid(2)}])
    c = client(emu)
    assert c.get_domain(DomainName='demo')['Stats']['ProfileCount'] == 2
    assert c.create_domain(DomainName='other', DefaultExpirationDays=30)['DomainName'] == 'other'
    assert c.get_domain(DomainName='other')['DefaultExpirationDays'] == 30
    with pytest.raises(c.exceptions.BadRequestException):
        c.create_domain(DomainName='other', DefaultExpirationDays=30)
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.get_domain(DomainName='missing')


def test_loading_rejects_bad_profiles():
    with pytest.raises(ValueError, match='profile 2'):
        start_emulator([{'ProfileId': pid(1)}, {'ProfileId': 'not-hex'}])
    with pytest.raises(ValueError, match='duplicate'):
        start_emulator([{'ProfileId': pid(1)}, {'ProfileId': pid(1)}])


# --------------------------------------------------------------------- search

def test_search_pages_through_next_token(emu_factory):
    profiles = [{'ProfileId': pid(i), 'Attributes': {'segment': 'gold'}} for i in range(1, 56)]
    profiles += [{'ProfileId': pid(i), 'Attributes': {'segment': 'silver'}} for i in range(56, 60)]
    emu = emu_factory(profiles)
    c = client(emu)
    seen, pages, token = [], 0, None
    while True:
        kwargs = {'NextToken': token} if token else {}
        page = c.search_profiles(DomainName='demo', KeyName='segment', Values=['gold'], MaxResults=20, **kwargs)
        pages += 1
        seen += [item['ProfileId'] for item in page['Items']]
        token = page.get('NextToken')
        if not token:
            break
        assert pid(1) not in token  # opaque: no raw ids
    assert pages == 3
    assert sorted(seen) == [pid(i) for i in range(1, 56)] and len(set(seen)) == 55

    first = c.search_profiles(DomainName='demo', KeyName='segment', Values=['gold'], MaxResults=5)
    with pytest.raises(c.exceptions.BadRequestException):  # token of another search
        c.search_profiles(DomainName='demo', KeyName='segment', Values=['silver'], NextToken=first['NextToken'])
    with pytest.raises(c.exceptions.BadRequestException):  # forged token
        c.search_profiles(DomainName='demo', KeyName='segment', Values=['gold'], NextToken=first['NextToken'][:-2] + 'zz')
    with pytest.raises(c.exceptions.BadRequestException):  # MaxResults over 100
        c.search_profiles(DomainName='demo', KeyName='segment', Values=['gold'], MaxResults=101)


def test_search_keys_and_operators(emu_factory):
    emu = emu_factory([
        {'ProfileId': pid(1), 'FirstName': 'Ana', 'MiddleName': 'M', 'LastName': 'Diaz',
         'MobilePhoneNumber': '+15550001', 'BusinessEmailAddress': 'ana@biz.com', 'AccountNumber': 'A1'},
        {'ProfileId': pid(2), 'FirstName': 'Ana', 'LastName': 'Diaz', 'HomePhoneNumber': '+15550002',
         'Attributes': {'loyaltyId': 'L9'}},
        {'ProfileId': pid(3), 'FirstName': 'Bo', 'PersonalEmailAddress': 'ana@biz.com'},
    ])
    c = client(emu)

    def ids(**kwargs):
        return [p['ProfileId'] for p in c.search_profiles(DomainName='demo', **kwargs)['Items']]

    assert ids(KeyName='_phone', Values=['+15550001', '+15550002']) == [pid(1), pid(2)]
    assert ids(KeyName='_email', Values=['ana@biz.com']) == [pid(1), pid(3)]
    assert ids(KeyName='_account', Values=['A1']) == [pid(1)]
    assert ids(KeyName='_fullName', Values=['Ana M Diaz']) == [pid(1)]
    assert ids(KeyName='_fullName', Values=['Ana Diaz']) == [pid(2)]
    assert ids(KeyName='_profileId', Values=[pid(3)]) == [pid(3)]
    assert ids(KeyName='loyaltyId', Values=['L9']) == [pid(2)]
    assert ids(KeyName='nosuchkey', Values=['x']) == []
    extra = [{'KeyName': '_fullName', 'Values': ['Ana M Diaz', 'Ana Diaz']}]
    assert ids(KeyName='_email', Values=['ana@biz.com'], AdditionalSearchKeys=extra, LogicalOperator='AND') == [pid(1)]
    answer = c.search_profiles(DomainName='demo', KeyName='_email', Values=['ana@biz.com'], AdditionalSearchKeys=extra)
    assert [p['ProfileId'] for p in answer['Items']] == [pid(1), pid(2), pid(3)]
    assert answer['Items'][1]['FoundByItems'] == [{'KeyName': '_fullName', 'Values': ['Ana Diaz']}]
    with pytest.raises(c.exceptions.BadRequestException):  # 5 additional keys: 6 in all
        c.search_profiles(DomainName='demo', KeyName='_email', Values=['x'], AdditionalSearchKeys=extra * 5)


# --------------------------------------------------------------------- merge semantics

def test_merge_union_main_wins_and_fill_order(emu_factory):
    emu = emu_factory([
        {'ProfileId': pid(1), 'FirstName': 'Main', 'Address': {'City': 'Oslo'}},
        {'ProfileId': pid(2), 'FirstName': 'Two', 'LastName': 'Second', 'BirthDate': '1990-01-01',
         'Address': {'City': 'Bergen', 'PostalCode': '5003'}},
        {'ProfileId': pid(3), 'LastName': 'Third', 'PhoneNumber': '+4711', 'Gender': 'FEMALE'},
    ])
    c = client(emu)
    answer = c.merge_profiles(DomainName='demo', MainProfileId=pid(1), ProfileIdsToBeMerged=[pid(3), pid(2)])
    assert answer['Message']
    assert emu.profiles() == [{
        'ProfileId': pid(1), 'FirstName': 'Main',       # main wins
        'LastName': 'Third',                            # first in ProfileIdsToBeMerged order
        'BirthDate': '1990-01-01', 'PhoneNumber': '+4711', 'Gender': 'FEMALE',  # union
        'Address': {'City': 'Oslo'},                    # structures move whole; main wins
    }]
    assert emu.merged_into() == {pid(2): pid(1), pid(3): pid(1)}


def test_named_source_wins_even_if_empty(emu_factory):
    emu = emu_factory([
        {'ProfileId': pid(1), 'FirstName': 'Main', 'EmailAddress': 'main@x', 'ShippingAddress': {'City': 'A'}},
        {'ProfileId': pid(2), 'FirstName': 'Dup', 'BillingAddress': {'City': 'B'}},
    ])
    c = client(emu)
    c.merge_profiles(
        DomainName='demo', MainProfileId=pid(1), ProfileIdsToBeMerged=[pid(2)],
        FieldSourceProfileIds={
            'FirstName': pid(2), 'EmailAddress': pid(2), 'ShippingAddress': pid(2),  # pid(2) lacks the last two
            'BillingAddress': pid(1),                                                  # main lacks it
        },
    )
    assert emu.profiles() == [{'ProfileId': pid(1), 'FirstName': 'Dup'}]


def test_attributes_merge_per_key(emu_factory):
    emu = emu_factory([
        {'ProfileId': pid(1), 'Attributes': {'a': 'main-a', 'b': 'main-b', 'c': 'main-c'}},
        {'ProfileId': pid(2), 'Attributes': {'a': 'two-a', 'b': 'two-b', 'd': 'two-d'}},
        {'ProfileId': pid(3), 'Attributes': {'d': 'three-d', 'e': 'three-e'}},
    ])
    c = client(emu)
    c.merge_profiles(
        DomainName='demo', MainProfileId=pid(1), ProfileIdsToBeMerged=[pid(2), pid(3)],
        FieldSourceProfileIds={'Attributes': {'b': pid(2), 'c': pid(3), 'e': pid(3)}},
    )
    assert emu.profiles()[0]['Attributes'] == {
        'a': 'main-a',   # conflict, no source: main
        'b': 'two-b',    # named source
        # 'c': named source pid(3) has no 'c', so it is removed
        'd': 'two-d',    # main lacks it: first merged profile that has it
        'e': 'three-e',
    }


def test_profile_type_and_engagement_preferences_sources(emu_factory):
    prefs_main = {'Phone': [{'KeyName': '_phone', 'KeyValue': '+1', 'ProfileId': pid(1), 'ContactType': 'PhoneNumber'}]}
    prefs_dup = {'Email': [{'KeyName': '_email', 'KeyValue': 'd@x', 'ProfileId': pid(2), 'ContactType': 'EmailAddress'}]}
    profiles = [
        {'ProfileId': pid(1), 'ProfileType': 'PROFILE', 'EngagementPreferences': prefs_main},
        {'ProfileId': pid(2), 'ProfileType': 'ACCOUNT_PROFILE', 'EngagementPreferences': prefs_dup},
    ]
    assert {'ProfileType', 'EngagementPreferences'} <= set(MERGE_SOURCE_FIELDS)
    emu = emu_factory(profiles)
    c = client(emu)
    c.merge_profiles(DomainName='demo', MainProfileId=pid(1), ProfileIdsToBeMerged=[pid(2)])
    merged = emu.profiles()[0]
    assert (merged['ProfileType'], merged['EngagementPreferences']) == ('PROFILE', prefs_main)

    emu = emu_factory(profiles)
    c = client(emu)
    c.merge_profiles(
        DomainName='demo', MainProfileId=pid(1), ProfileIdsToBeMerged=[pid(2)],
        FieldSourceProfileIds={'ProfileType': pid(2), 'EngagementPreferences': pid(2)},
    )
    merged = emu.profiles()[0]
    assert (merged['ProfileType'], merged['EngagementPreferences']) == ('ACCOUNT_PROFILE', prefs_dup)


def test_merged_profiles_are_gone_and_their_keys_move(emu_factory):
    emu = emu_factory([
        {'ProfileId': pid(1), 'EmailAddress': 'main@x'},
        {'ProfileId': pid(2), 'EmailAddress': 'dup@x', 'Attributes': {'crmId': 'C2'}},
        {'ProfileId': pid(3), 'EmailAddress': 'other@x'},
    ])
    c = client(emu)
    c.merge_profiles(DomainName='demo', MainProfileId=pid(1), ProfileIdsToBeMerged=[pid(2)])
    answer = c.batch_get_profile(DomainName='demo', ProfileIds=[pid(1), pid(2)])
    assert [p['ProfileId'] for p in answer['Profiles']] == [pid(1)]
    assert [e['ProfileId'] for e in answer['Errors']] == [pid(2)]
    # the merged profile's email lost to the main's, but its key now finds the main
    found = c.search_profiles(DomainName='demo', KeyName='_email', Values=['dup@x'])['Items']
    assert [p['ProfileId'] for p in found] == [pid(1)] and found[0]['EmailAddress'] == 'main@x'
    assert c.search_profiles(DomainName='demo', KeyName='_profileId', Values=[pid(2)])['Items'] == []

    # merging again: 404, nothing changes, counted as a repeat
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.merge_profiles(DomainName='demo', MainProfileId=pid(1), ProfileIdsToBeMerged=[pid(2)])
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.merge_profiles(DomainName='demo', MainProfileId=pid(1), ProfileIdsToBeMerged=[pid(2), pid(3)])
    assert pid(3) in by_id(emu)
    stats = emu.stats()
    assert (stats['merges_applied'], stats['remerge_attempts'], stats['partial_remerge_attempts']) == (1, 1, 1)


def test_merge_validation(emu_factory):
    emu = emu_factory([{'ProfileId': pid(i), 'FirstName': str(i)} for i in range(1, 4)])
    c = client(emu)

    def merge_error(main=pid(1), ids=(pid(2),), domain='demo', **kwargs):
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            c.merge_profiles(DomainName=domain, MainProfileId=main, ProfileIdsToBeMerged=list(ids), **kwargs)
        return error_code_of(excinfo.value), excinfo.value.response['ResponseMetadata']['HTTPStatusCode']

    assert merge_error(ids=[pid(i) for i in range(2, 23)]) == ('BadRequestException', 400)  # 21 ids
    assert merge_error(main='ABCDEF' + '0' * 26) == ('BadRequestException', 400)  # upper case
    assert merge_error(ids=[pid(2), 'g' * 32]) == ('BadRequestException', 400)
    assert merge_error(ids=[pid(1)]) == ('BadRequestException', 400)  # main merged into itself
    assert merge_error(FieldSourceProfileIds={'FirstName': pid(3)}) == ('BadRequestException', 400)
    assert merge_error(FieldSourceProfileIds={'Attributes': {'k': pid(3)}}) == ('BadRequestException', 400)
    assert merge_error(domain='nosuchdomain') == ('ResourceNotFoundException', 404)
    assert merge_error(main=pid(99)) == ('ResourceNotFoundException', 404)
    assert merge_error(ids=[pid(2), pid(99)]) == ('ResourceNotFoundException', 404)
    assert len(emu.profiles()) == 3 and emu.merged_into() == {}  # nothing applied


def test_concurrent_merges_of_one_id_apply_once(emu_factory):
    emu = emu_factory([{'ProfileId': pid(i)} for i in range(1, 22)])
    c = client(emu)
    barrier = threading.Barrier(20)

    def merge(main: int) -> str:
        barrier.wait()
        try:
            c.merge_profiles(DomainName='demo', MainProfileId=pid(main), ProfileIdsToBeMerged=[pid(21)])
            return 'ok'
        except botocore.exceptions.ClientError as exc:
            return error_code_of(exc)

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(merge, range(1, 21)))
    assert Counter(outcomes) == {'ok': 1, 'ResourceNotFoundException': 19}
    assert len(emu.profiles()) == 20 and len(emu.merged_into()) == 1


# --------------------------------------------------------------------- faults

def test_max_attempts_1_means_one_retry(emu_factory):
    """Why the tests use total_max_attempts: Config max_attempts counts retries."""
    emu = emu_factory([{'ProfileId': pid(1)}, {'ProfileId': pid(2)}], throttle_rate=1.0)
    c = client(emu, Config(retries={'max_attempts': 1, 'mode': 'standard'}))
    with pytest.raises(c.exceptions.ThrottlingException):
        c.merge_profiles(DomainName='demo', MainProfileId=pid(1), ProfileIdsToBeMerged=[pid(2)])
    assert emu.stats()['requests']['MergeProfiles'] == 2


def test_throttle_and_error_faults(emu_factory):
    profiles = [{'ProfileId': pid(i)} for i in range(1, 5)]
    emu = emu_factory(profiles, throttle_rate=1.0)
    c = client(emu)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        c.merge_profiles(DomainName='demo', MainProfileId=pid(1), ProfileIdsToBeMerged=[pid(2)])
    assert error_code_of(excinfo.value) == 'ThrottlingException'
    assert excinfo.value.response['ResponseMetadata']['HTTPStatusCode'] == 429
    assert emu.stats()['merges_rejected']['random_throttle'] == 1

    emu.set_faults(error_rate=1.0)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        c.merge_profiles(DomainName='demo', MainProfileId=pid(1), ProfileIdsToBeMerged=[pid(2)])
    assert error_code_of(excinfo.value) == 'InternalServerException'
    assert excinfo.value.response['ResponseMetadata']['HTTPStatusCode'] == 500
    stats = emu.stats()
    assert stats['merges_rejected']['internal_error'] == 1 and stats['merges_applied'] == 0
    assert len(emu.profiles()) == 4  # not applied

    emu.set_faults(error_rate=0.3, throttle_rate=0.3, seed=7)
    outcomes = []
    for _ in range(40):
        try:
            c.get_domain(DomainName='demo')  # never faulted
            c.merge_profiles(DomainName='demo', MainProfileId=pid(3), ProfileIdsToBeMerged=[pid(4)])
            outcomes.append('ok')
        except botocore.exceptions.ClientError as exc:
            outcomes.append(error_code_of(exc))
    assert {'ThrottlingException', 'InternalServerException'} <= set(outcomes)
    assert outcomes.count('ok') == 1  # later tries find pid(4) gone
    assert outcomes[outcomes.index('ok') + 1:].count('ResourceNotFoundException') >= 1


def test_ghost_merge_is_applied_without_an_answer(emu_factory):
    emu = emu_factory([{'ProfileId': pid(i)} for i in range(1, 5)], ghost_rate=1.0)
    c = client(emu)
    c.get_domain(DomainName='demo')  # the merge goes over a kept-alive connection
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        c.merge_profiles(DomainName='demo', MainProfileId=pid(1), ProfileIdsToBeMerged=[pid(2)])
    assert emu.merged_into() == {pid(2): pid(1)}

    # a client that retries sends the merge again and is told the id does not exist
    retrying = client(emu, Config(retries={'mode': 'standard', 'total_max_attempts': 3}))
    with pytest.raises(retrying.exceptions.ResourceNotFoundException):
        retrying.merge_profiles(DomainName='demo', MainProfileId=pid(3), ProfileIdsToBeMerged=[pid(4)])
    stats = emu.stats()
    assert stats['ghost_merges'] == 2 and stats['merges_applied'] == 2
    assert stats['remerge_attempts'] == 1
    assert c.get_domain(DomainName='demo')['Stats']['ProfileCount'] == 2


def test_latency_applies_to_every_operation(emu_factory):
    emu = emu_factory([{'ProfileId': pid(1)}], latency_ms=150)
    c = client(emu)
    for call in (
        lambda: c.batch_get_profile(DomainName='demo', ProfileIds=[pid(1)]),
        lambda: c.search_profiles(DomainName='demo', KeyName='_profileId', Values=[pid(1)]),
    ):
        start = time.perf_counter()
        call()
        assert time.perf_counter() - start >= 0.15


def test_rate_limit_holds_under_concurrency(emu_factory):
    rate = 20
    emu = emu_factory([{'ProfileId': pid(i)} for i in range(1, 121)], merge_rate=rate)
    c = client(emu)
    throttled = []

    def merge(n: int) -> None:
        while True:
            try:
                c.merge_profiles(DomainName='demo', MainProfileId=pid(2 * n + 1), ProfileIdsToBeMerged=[pid(2 * n + 2)])
                return
            except c.exceptions.ThrottlingException:
                throttled.append(n)
                time.sleep(0.005)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(merge, range(60)))

    stats = emu.stats()
    burst = stats['faults']['merge_burst']
    assert burst == rate
    assert stats['merges_applied'] == 60 and len(emu.profiles()) == 60
    assert stats['merges_rejected']['rate_limit'] == len(throttled) > 0
    assert stats['peak_accepted_merges_1s'] <= rate + burst
    times = stats['accepted_merge_times']
    assert len(times) == 60
    for i, start in enumerate(times):  # recount every 1-s window from the log
        assert sum(1 for t in times[i:] if t - start < 1.0) <= rate + burst
    assert times[-1] - times[0] >= (60 - burst) / rate - 0.05


# --------------------------------------------------------------------- HTTP control and CLI

def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)


def test_control_endpoints(emu_factory):
    emu = emu_factory([{'ProfileId': pid(1)}, {'ProfileId': pid(2)}])
    client(emu).merge_profiles(DomainName='demo', MainProfileId=pid(1), ProfileIdsToBeMerged=[pid(2)])
    stats = _get_json(emu.url + '/_emulator/stats')
    assert stats['requests'] == {'MergeProfiles': 1} and stats['merges_applied'] == 1
    dump = _get_json(emu.url + '/_emulator/profiles/demo')
    assert dump['Profiles'] == [{'ProfileId': pid(1)}]
    assert dump['MergedInto'] == {pid(2): pid(1)}
    assert dump['MergeLog'][0]['ProfileIdsToBeMerged'] == [pid(2)]


def test_cli_prints_url_and_serves(tmp_path):
    jsonl = tmp_path / 'profiles.jsonl'
    jsonl.write_text(''.join(json.dumps({'ProfileId': pid(i), 'FirstName': f'P{i}'}) + '\n' for i in (1, 2)))
    proc = subprocess.Popen(
        [sys.executable, '-m', 'emulator', '--profiles', str(jsonl), '--domain', 'demo',
         '--port', '0', '--merge_rate', '5'],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, 'PYTHONPATH': str(REPO)},
    )
    try:
        lines = []
        reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=20)
        assert lines and lines[0].startswith('emulator listening on http://127.0.0.1:'), proc.stderr
        url = lines[0].split(' on ', 1)[1].strip()
        c = client(url)
        answer = c.batch_get_profile(DomainName='demo', ProfileIds=[pid(1), pid(2)])
        assert [p['FirstName'] for p in answer['Profiles']] == ['P1', 'P2']
        assert _get_json(url + '/_emulator/stats')['faults']['merge_rate'] == 5
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
