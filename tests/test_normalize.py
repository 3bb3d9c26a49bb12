"""Tests for transforms/normalize.py: phones, emails, names, dates, postcodes, features."""
from __future__ import annotations

import datetime as dt

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.helpers import pid
from transforms.model import JOINT_MIN_PROFILES, default_model, term_frequency_fields
from transforms.normalize import (
    AttachTermFrequencies,
    NormalizeProfiles,
    address_line_key,
    country_code,
    fold_name,
    fold_text,
    household_email,
    identifier_text,
    name_variants,
    normalize_birth_date,
    normalize_email,
    normalize_phone,
    normalize_postcode,
    phonetic,
    profile_features,
    profile_region,
    written_name,
)

# ----------------------------------------------------------------------- phones

# (region, raw) -> one E.164 per country: every way people write the same line.
PHONE_FORMATS = {
    ("US", "+14155552671"): [
        "+1 415 555 2671", "+14155552671", "(415) 555-2671", "415.555.2671", "415 555 2671",
        "1-415-555-2671", "14155552671", "001 415 555 2671", "011 1 415 555 2671",
        "+1.415.555.2671", "  +1 (415) 555-2671  ", "415-555-2671 x123", "415-555-2671x123",
        "415 555 2671 ext. 45", "415 555 2671 ext 45", "(415) 555-2671 ext.45", "+1 415 555 2671 #45",
    ],
    ("GB", "+442079460958"): [
        "+44 20 7946 0958", "020 7946 0958", "+44 (0)20 7946 0958", "+44 (0) 20 7946 0958",
        "+44(0)2079460958", "0044 20 7946 0958", "0044 (0)20 7946 0958", "44 20 7946 0958",
        "44 (0)20 7946 0958", "(020) 7946-0958", "020.7946.0958", "020-7946-0958",
        "020 7946 0958 x12", "+44 20 7946 0958 ext. 45", "(+44) 20 7946 0958",
    ],
    ("DE", "+4930901820"): [
        "+49 30 901820", "030 901820", "030/901820", "0049 30 901820", "49 30 901820",
        "+49 (0)30 901820", "0049 (0)30 901820", "030-901820", "+49 (0)30 901820 ext. 45",
        "030 901820 x 45",
    ],
    ("FR", "+33142685300"): [
        "+33 1 42 68 53 00", "01 42 68 53 00", "01.42.68.53.00", "0142685300", "0033 1 42 68 53 00",
        "33 1 42 68 53 00", "+33 (0)1 42 68 53 00", "0033 (0)1 42 68 53 00", "01-42-68-53-00 ext 7",
    ],
    ("IN", "+919876543211"): [
        "+91 98765 43211", "+91-98765-43211", "098765 43211", "09876543211", "0 98765 43211",
        "0091 98765 43211", "91 98765 43211", "98765 43211", "98765-43211 ext. 45",
    ],
    ("AU", "+61293744000"): [
        "+61 2 9374 4000", "(02) 9374 4000", "02 9374 4000", "0061 2 9374 4000", "0011 61 2 9374 4000",
        "61 2 9374 4000", "+61 (0)2 9374 4000", "0061 (0)2 9374 4000", "02.9374.4000 x9",
    ],
    ("BR", "+5511987654321"): [
        "+55 11 98765-4321", "+55 (11) 98765-4321", "(11) 98765-4321", "011 98765-4321",
        "0055 11 98765 4321", "55 11 98765 4321", "11 98765 4321 ext 3",
    ],
    ("JP", "+81312345678"): [
        "+81 3-1234-5678", "03-1234-5678", "(03) 1234-5678", "0312345678", "0081 3 1234 5678",
        "010 81 3 1234 5678", "81 3 1234 5678", "+81 (0)3 1234 5678", "03.1234.5678 x22",
    ],
    ("ES", "+34912345678"): [
        "+34 912 34 56 78", "912 34 56 78", "912.345.678", "912-345-678", "0034 912 345 678",
        "34 912 345 678", "(+34) 912 345 678", "+34-912-345-678 ext. 12",
    ],
}
PHONE_CASES = [(region, raw, e164) for (region, e164), raws in PHONE_FORMATS.items() for raw in raws]


@pytest.mark.parametrize("region,raw,expected", PHONE_CASES, ids=[f"{r}:{raw}" for r, raw, _ in PHONE_CASES])
def test_phone_every_format_gives_the_same_e164(region, raw, expected):
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize("raw,expected", [
    ("+44 7911 123456", "+447911123456"), ("07911 123456", "+447911123456"),  # GB mobile
    ("01512 3456789", None),  # a German mobile written nationally is not a GB number
])
def test_phone_gb_mobile(raw, expected):
    assert normalize_phone(raw, "GB") == expected


@pytest.mark.parametrize("region,raw", [
    ("GB", "0044 20 7946 0958 X12"),   # upper-case extension marker
    ("US", "0044 20 7946 0958 X12"),   # ... with a "00" prefix read from a US profile
    ("US", "44 20 7946 0958 EXT 12"),  # upper-case extension, missing "+"
    ("US", "0044 20 7946 0958 EXT. 12"),
])
def test_phone_uppercase_extension_marker_is_dropped_like_lowercase(region, raw):
    assert normalize_phone(raw, region) == "+442079460958"
    assert normalize_phone(raw.lower(), region) == "+442079460958"


def test_phone_international_form_ignores_the_region():
    # a number with its country code reads the same from any profile's region
    for region in ("US", "GB", "DE", "JP", "IN", ""):
        assert normalize_phone("+44 (0)20 7946 0958", region) == "+442079460958"
        assert normalize_phone("+49 30 901820", region) == "+4930901820"


def test_phone_national_form_depends_on_the_region():
    assert normalize_phone("020 7946 0958", "GB") == "+442079460958"
    assert normalize_phone("020 7946 0958", "US") is None  # not a US number: flagged, not guessed
    assert normalize_phone("030 901820", "DE") == "+4930901820"
    assert normalize_phone("030 901820", "FR") is None


def test_phone_empty_region_reads_as_us():
    assert normalize_phone("(415) 555-2671", "") == "+14155552671"


@pytest.mark.parametrize("region,raw", [
    ("US", "12345"), ("US", "555-1234"), ("US", "not a phone"), ("US", "+1 555 555 5555"),
    ("GB", "020 7946"), ("GB", "020 7946 0958 0958 0958"), ("US", "000000"), ("US", "+999 1234567"),
    ("US", "415 555 2671 / 415 555 2672"), ("US", "+14155552671+14155552672"), ("DE", "0000 000000"),
    ("US", ""), ("US", "   "), ("US", "---"), ("US", None), ("US", 4155552671), ("FR", "01 42 68"),
])
def test_phone_invalid_is_none_never_guessed(region, raw):
    assert normalize_phone(raw, region) is None


# ---------------------------------------------------------------------- regions


@pytest.mark.parametrize("value,expected", [
    ("GB", "GB"), ("gb", "GB"), (" de ", "DE"), ("GBR", "GB"), ("DEU", "DE"), ("FRA", "FR"), ("IND", "IN"),
    ("AUS", "AU"), ("BRA", "BR"), ("JPN", "JP"), ("ESP", "ES"), ("USA", "US"), ("usa", "US"),
    ("U.S.A.", "US"), ("u.s.", "US"), ("United States", "US"), ("United States of America", "US"),
    ("UK", "GB"), ("uk", "GB"), ("United Kingdom", "GB"), ("Great Britain", "GB"), ("England", "GB"),
    ("Scotland", "GB"), ("Germany", "DE"), ("France", "FR"), ("India", "IN"), ("Australia", "AU"),
    ("Brazil", "BR"), ("Japan", "JP"), ("Spain", "ES"), ("Netherlands", "NL"), ("Viet Nam", "VN"),
    ("Czech Republic", "CZ"), ("Russia", "RU"),
    # names inside another country's ISO name, or former names
    ("Republic of Korea", "KR"), ("Korea, Republic of", "KR"), ("North Korea", "KP"), ("Turkey", "TR"),
    ("Türkiye", "TR"), ("Ivory Coast", "CI"), ("Burma", "MM"), ("Swaziland", "SZ"), ("Cape Verde", "CV"),
    ("East Timor", "TL"), ("Republic of China", "TW"), ("Taiwan", "TW"),
])
def test_country_code_from_iso2_iso3_names_and_aliases(value, expected):
    assert country_code(value) == expected


@pytest.mark.parametrize("value", ["", "   ", None, 5, "Nowhere", "ZZ", "ZZZ", "Atlantis", "N/A", "Unknown", "-"])
def test_country_code_unknown_is_empty(value):
    assert country_code(value) == ""


@pytest.mark.parametrize("value", ["XX", "none", "Other"])
def test_country_code_placeholder_is_not_guessed_as_a_country(value):
    # "Invalid values are flagged, not guessed": a placeholder country must not become Malta, Italy or GB
    assert country_code(value) == ""


def test_placeholder_country_falls_back_to_the_default_region():
    profile = {"ProfileId": pid(1), "PhoneNumber": "(415) 555-2671", "BirthDate": "04/05/1980",
               "Address": {"Country": "none"}}
    f = profile_features(profile, "US")
    assert f["country"] == ""
    assert f["phones"] == ("+14155552671",)
    assert f["dob"] == "1980-04-05"


def test_profile_region_from_first_address_with_a_country_else_default():
    assert profile_region({"Address": {"Country": "GBR"}}, "US") == "GB"
    assert profile_region({"Address": {"Country": "Germany"}}, "US") == "DE"
    assert profile_region({"Address": {"Country": "UK"}}, "US") == "GB"
    # Address without a country: the next address with one
    assert profile_region({"Address": {"City": "Paris"}, "MailingAddress": {"Country": "FR"}}, "US") == "FR"
    assert profile_region({"Address": {"Country": "Atlantis"}}, "AU") == "AU"
    assert profile_region({}, "JP") == "JP"
    assert profile_region({"Address": "not an object"}, "ES") == "ES"


@pytest.mark.parametrize("country,raw,expected", [
    ("United Kingdom", "020 7946 0958", "+442079460958"),
    ("GBR", "020 7946 0958", "+442079460958"),
    ("UK", "07911 123456", "+447911123456"),
    ("Germany", "030 901820", "+4930901820"),
    ("DEU", "030 901820", "+4930901820"),
    ("France", "01 42 68 53 00", "+33142685300"),
    ("India", "098765 43211", "+919876543211"),
    ("AUS", "(02) 9374 4000", "+61293744000"),
    ("Brazil", "(11) 98765-4321", "+5511987654321"),
    ("Japan", "03-1234-5678", "+81312345678"),
    ("ESP", "912 34 56 78", "+34912345678"),
    ("USA", "(415) 555-2671", "+14155552671"),
])
def test_profile_features_read_national_phones_with_the_address_country(country, raw, expected):
    profile = {"ProfileId": pid(1), "PhoneNumber": raw, "Address": {"Country": country}}
    features = profile_features(profile, default_region="GB" if country == "USA" else "US")  # not the answer
    assert features["phones"] == (expected,)
    assert features["invalid"] == ()


def test_a_national_number_invalid_in_the_region_is_read_in_the_country_of_the_profiles_other_numbers():
    # no address: the "+81" mobile says where "03-1234-5678" is; the default region (US) cannot read it
    profile = {"ProfileId": pid(1), "MobilePhoneNumber": "+81 90-1234-5678", "HomePhoneNumber": "03-1234-5678"}
    features = profile_features(profile, default_region="US")
    assert features["phones"] == ("+819012345678", "+81312345678") and features["invalid"] == ()
    # alone, it stays invalid: flagged, never guessed
    alone = profile_features({"ProfileId": pid(1), "HomePhoneNumber": "03-1234-5678"}, default_region="US")
    assert alone["phones"] == () and alone["invalid"] == ("HomePhoneNumber",)
    # the region still comes first: a number valid there is read there, whatever the other numbers say
    gb = profile_features({"ProfileId": pid(1), "MobilePhoneNumber": "+1 415 555 2671",
                           "HomePhoneNumber": "020 7946 0018"}, default_region="GB")
    assert gb["phones"] == ("+14155552671", "+442079460018")
    # a non-geographic number (+800, a free number: valid, and no one's, so not compared either)
    # names no country to read the others in
    free = profile_features({"ProfileId": pid(1), "PhoneNumber": "+800 2468 1357", "HomePhoneNumber": "03-1234-5678"},
                            default_region="US")
    assert free["phones"] == () and free["invalid"] == ("HomePhoneNumber",)
    # the field order of the phones and of the invalid fields is kept
    mixed = profile_features({"ProfileId": pid(1), "PhoneNumber": "03-1234-5678", "MobilePhoneNumber": "12",
                              "HomePhoneNumber": "+81 90-1234-5678"}, default_region="US")
    assert mixed["phones"] == ("+81312345678", "+819012345678") and mixed["invalid"] == ("MobilePhoneNumber",)


def test_profile_features_default_region_when_no_country():
    profile = {"ProfileId": pid(1), "PhoneNumber": "020 7946 0958"}
    assert profile_features(profile, "GB")["phones"] == ("+442079460958",)
    f = profile_features(profile, "US")
    assert f["phones"] == ()
    assert f["invalid"] == ("PhoneNumber",)


# ----------------------------------------------------------------------- emails


@pytest.mark.parametrize("raw,stored,key", [
    ("  John.Smith@Example.COM ", "john.smith@example.com", "john.smith@example.com"),
    ("John.Smith+news@GMail.com", "john.smith+news@gmail.com", "johnsmith@gmail.com"),
    ("j.o.h.n.smith@googlemail.com", "j.o.h.n.smith@googlemail.com", "johnsmith@gmail.com"),
    ("JohnSmith@gmail.com", "johnsmith@gmail.com", "johnsmith@gmail.com"),
    ("john.smith+x@example.com", "john.smith+x@example.com", "john.smith@example.com"),  # +tag, dots kept
    ("<a.b@example.co.uk>", "a.b@example.co.uk", "a.b@example.co.uk"),
    ("ALICE@EXAMPLE.ORG", "alice@example.org", "alice@example.org"),
])
def test_email_stored_form_and_matching_key(raw, stored, key):
    assert normalize_email(raw) == (stored, key)


def test_email_gmail_variants_share_one_key_but_keep_their_stored_form():
    variants = ["john.smith@gmail.com", "JohnSmith+shop@gmail.com", " j.ohn.smith@googlemail.com", "JOHNSMITH@GMAIL.COM"]
    parsed = [normalize_email(v) for v in variants]
    assert {key for _, key in parsed} == {"johnsmith@gmail.com"}
    assert len({stored for stored, _ in parsed}) == 4
    # dots matter outside Gmail
    assert normalize_email("john.smith@example.com")[1] != normalize_email("johnsmith@example.com")[1]


@pytest.mark.parametrize("raw", [
    "a@b", "not-an-email", "a b@c.com", "@x.com", "+tag@gmail.com", "a@@b.com", "a@b.c", "",
    "   ", "a@b.com, c@d.com", None, 42, "john.smith@", "..@gmail.com",
])
def test_email_invalid_is_none(raw):
    assert normalize_email(raw) is None


# ------------------------------------------------------------------------ names


@pytest.mark.parametrize("a,b", [
    ("Zoë Müller", "zoe muller"), ("ZOË MÜLLER", "Zoe Muller"), ("José", "JOSE"), ("Łukasz", "lukasz"),
    ("Ørsted", "orsted"), ("  Anne   Marie ", "anne marie"), ("Jean-Luc", "jean luc"), ("O'Brien", "OBrien"),
    ("ﬁona", "Fiona"),
])
def test_fold_name_case_and_accents(a, b):
    assert fold_name(a) == fold_name(b) != ""


def test_fold_name_values():
    assert fold_name("Zoë Müller") == "zoe muller"
    assert fold_name("Straße") == "strasse"
    assert fold_name("O'Brien") == "obrien"
    assert fold_text("Zoë  Müller ") == "zoe muller"


@pytest.mark.parametrize("placeholder", ["Unknown", "UNKNOWN", "N/A", "n.a.", "NA", "none", "NULL", "Test", "x", "Customer", "xxx"])
def test_fold_name_placeholders_are_empty(placeholder):
    assert fold_name(placeholder) == ""


@pytest.mark.parametrize("value", [None, 5, "", "   ", "123", "---"])
def test_fold_name_not_a_name_is_empty(value):
    assert fold_name(value) == ""


def test_nickname_variants_are_symmetric_and_not_transitive():
    assert "robert" in name_variants("bob")
    assert "bob" in name_variants("robert")
    assert "william" in name_variants("bill") and "bill" in name_variants("william")
    assert "elizabeth" in name_variants("liz") and "liz" in name_variants("elizabeth")
    assert "margaret" in name_variants("peggy")
    # bob ~ robert ~ bill, but bob is not bill
    assert "bill" in name_variants("robert")
    assert "bill" not in name_variants("bob")
    # a name always stands for itself; unknown names only for themselves
    assert "bob" in name_variants("bob")
    assert name_variants("zzyzx") == ("zzyzx",)
    assert name_variants("") == ()
    # only the first word of a folded name
    assert name_variants("bob smith") == name_variants("bob")


def test_profile_features_nickname_variants_from_the_raw_first_name():
    f = profile_features({"ProfileId": pid(1), "FirstName": "  BOB "})
    assert f["first"] == "bob"
    assert "robert" in f["first_variants"]


def test_phonetic_key():
    assert phonetic("smith") == phonetic("smyth") != ""
    assert phonetic("smith") != phonetic("jones")
    assert phonetic("") == ""


# ------------------------------------------------------------------------ dates

TODAY = dt.date(2024, 6, 1)


@pytest.mark.parametrize("raw,region,expected", [
    ("1980-04-23", "", "1980-04-23"),
    ("1980-4-23", "", "1980-04-23"),
    ("1980/04/23", "", "1980-04-23"),
    ("1980.04.23", "", "1980-04-23"),
    ("1980-04-23 10:00", "", "1980-04-23"),
    ("19800423", "", "1980-04-23"),
    ("23 Apr 1980", "", "1980-04-23"),
    ("23 April 1980", "", "1980-04-23"),
    ("23rd April 1980", "", "1980-04-23"),
    ("23-Apr-1980", "", "1980-04-23"),
    ("April 23, 1980", "", "1980-04-23"),
    ("april 23rd, 1980", "", "1980-04-23"),
    ("Apr. 23, 1980", "", "1980-04-23"),
    ("Apr 23 1980", "", "1980-04-23"),
    ("Sept 5, 1980", "", "1980-09-05"),
    # unambiguous numeric dates: the same in every region
    ("23/04/1980", "US", "1980-04-23"),
    ("23/04/1980", "GB", "1980-04-23"),
    ("04/23/1980", "US", "1980-04-23"),
    ("04/23/1980", "GB", "1980-04-23"),
    ("23.04.1980", "DE", "1980-04-23"),
    ("23-04-1980", "FR", "1980-04-23"),
    # ambiguous: month first in the US (and Canada), day first elsewhere
    ("04/05/1980", "US", "1980-04-05"),
    ("04/05/1980", "CA", "1980-04-05"),
    ("04/05/1980", "GB", "1980-05-04"),
    ("04/05/1980", "DE", "1980-05-04"),
    ("04/05/1980", "IN", "1980-05-04"),
    ("04/05/1980", "", "1980-05-04"),
    ("12/12/1980", "US", "1980-12-12"),
    ("29/02/2000", "GB", "2000-02-29"),
    ("2024-06-01", "", "2024-06-01"),  # today is not in the future
])
def test_birth_date_formats(raw, region, expected):
    assert normalize_birth_date(raw, region, today=TODAY) == expected


def test_birth_date_iso_with_a_time_part():
    # the docstring promises ISO "with or without a time part"; exports carry timestamps like this
    assert normalize_birth_date("1980-04-23T00:00:00Z", today=TODAY) == "1980-04-23"
    assert normalize_birth_date("1980-04-23T10:30:00+02:00", today=TODAY) == "1980-04-23"


@pytest.mark.parametrize("raw,region", [
    ("31/02/1980", "GB"), ("02/31/1980", "US"), ("1980-02-30", ""), ("29/02/1900", "GB"), ("1980-13-01", ""),
    ("13/13/1980", ""), ("00/00/1980", ""),
    ("2030-01-01", ""), ("01/01/2030", "GB"), ("2024-06-02", ""),  # future
    ("23/04/80", "GB"), ("04/23/80", "US"), ("04/05/80", "US"), ("800423", ""),  # two-digit years
    ("1870-01-01", ""), ("0000-00-00", ""), ("not a date", ""), ("1980", ""), ("", ""), ("   ", ""),
    (None, ""), (19800423, ""), ("5 Foo 1980", ""),
])
def test_birth_date_invalid_is_none(raw, region):
    assert normalize_birth_date(raw, region, today=TODAY) is None


@pytest.mark.parametrize("raw,region", [("1900-01-01", ""), ("01/01/1900", "GB"), ("19700101", ""),
                                        ("1970-01-01T00:00:00Z", ""), ("1 Jan 1901", ""), ("12/30/1899", "US")])
def test_a_placeholder_birth_date_is_not_a_birth_date(raw, region):
    assert normalize_birth_date(raw, region, today=TODAY) is None
    # the days around it are
    assert normalize_birth_date("1970-01-02", today=TODAY) == "1970-01-02"


def test_two_strangers_with_a_placeholder_birth_date_have_no_birth_date_to_agree_on():
    a = profile_features({"ProfileId": pid(1), "FirstName": "John", "LastName": "Smith", "BirthDate": "1900-01-01"})
    assert a["dob"] == "" and "BirthDate" in a["invalid"]


def test_birth_date_future_relative_to_real_today():
    assert normalize_birth_date("2999-01-01") is None


# -------------------------------------------------------------------- addresses


@pytest.mark.parametrize("raw,expected", [
    ("sw1a 1aa", "SW1A1AA"), (" SW1A-1AA ", "SW1A1AA"), ("94105-1234", "941051234"), ("10117", "10117"),
    ("75008 Paris", "75008PARIS"), ("", ""), (None, ""), (12345, ""),
])
def test_normalize_postcode(raw, expected):
    assert normalize_postcode(raw) == expected


def test_address_line_key_expands_street_words():
    assert address_line_key({"Address1": "12 High St."}) == address_line_key({"Address1": "12 high street"})
    assert address_line_key({"Address1": "5 Elm Rd", "Address2": "Apt 4"}) == "5 elm road apartment 4"
    assert address_line_key({}) == ""


# --------------------------------------------------------------------- features

FULL_PROFILE = {
    "ProfileId": pid(7),
    "ProfileType": "PROFILE",
    "FirstName": "Zoë",
    "MiddleName": "Anne",
    "LastName": "Müller",
    "BirthDate": "23/04/1980",
    "Gender": "FEMALE",
    "PhoneNumber": "020 7946 0958",
    "HomePhoneNumber": "+44 (0)20 7946 0958",    # same line again: one phone
    "MobilePhoneNumber": "12345",                 # invalid
    "EmailAddress": " Zoe.Muller+x@GoogleMail.com",
    "PersonalEmailAddress": "zoe.muller1980@example.com",
    "BusinessEmailAddress": "nope",               # invalid
    "Address": {"Address1": "12 High St.", "City": "London", "PostalCode": "sw1a 1aa", "Country": "UK"},
    "ShippingAddress": {"PostalCode": "EC1A 1BB", "City": "London"},
    "BusinessName": "ACME Ltd",
    "AccountNumber": "AC-1",
    "Attributes": {"crm_id": "X1"},
}


def test_profile_features_full_profile():
    f = profile_features(FULL_PROFILE, "US", ("AccountNumber", "Attributes.crm_id", "Attributes.missing"))
    assert f["id"] == pid(7)
    assert f["type"] == "PROFILE"
    assert (f["first"], f["middle"], f["last"]) == ("zoe", "anne", "muller")
    assert f["first_initial"] == "z"
    assert f["name_pair"] == "muller|zoe"
    assert f["last_phonetic"] == phonetic("muller")
    # region GB from "UK": day-first date and national phone
    assert f["dob"] == "1980-04-23" and f["dob_year"] == "1980"
    assert f["phones"] == ("+442079460958",)
    assert f["emails"] == ("zoemuller@gmail.com", "zoe.muller1980@example.com")
    assert f["email_users"] == ("zoemuller", "zoe.muller1980")
    assert f["email_users_specific"] == ("zoe.muller1980",)   # "zoemuller" only repeats the names
    assert f["postcodes"] == ("SW1A1AA", "EC1A1BB")
    assert f["address"] == "12 high street"
    assert f["city"] == "london"
    assert f["country"] == "GB"
    assert f["gender"] == "FEMALE"
    assert f["business"] == "acme"
    assert f["account"] == "ac-1"
    # identifiers are compared as written (only the spaces around them dropped): not folded like names
    assert f["identifiers"] == (("AccountNumber", "AC-1"), ("Attributes.crm_id", "X1"))
    assert set(f["invalid"]) == {"MobilePhoneNumber", "BusinessEmailAddress"}


def test_profile_features_invalid_fields_listed():
    profile = {"ProfileId": pid(1), "PhoneNumber": "call me", "EmailAddress": "no at sign",
               "BirthDate": "31/02/1980", "FirstName": "Unknown"}
    f = profile_features(profile)
    assert set(f["invalid"]) == {"PhoneNumber", "EmailAddress", "BirthDate"}
    assert f["phones"] == () and f["emails"] == () and f["dob"] == "" and f["first"] == ""
    assert f["first_variants"] == () and f["name_pair"] == ""


def test_profile_features_minimal_profile_is_empty_not_invalid():
    f = profile_features({"ProfileId": pid(2)})
    assert f["invalid"] == ()
    assert f["type"] == "" and f["gender"] == "" and f["identifiers"] == ()
    assert f["phones"] == () and f["postcodes"] == () and f["address"] == "" and f["country"] == ""


def test_profile_features_gender_only_male_or_female():
    assert profile_features({"ProfileId": pid(1), "Gender": "UNSPECIFIED"})["gender"] == ""
    assert profile_features({"ProfileId": pid(1), "Gender": "MALE"})["gender"] == "MALE"
    # GenderString, Gender's free-text twin, when Gender is missing
    assert profile_features({"ProfileId": pid(1), "GenderString": " female"})["gender"] == "FEMALE"
    assert profile_features({"ProfileId": pid(1), "GenderString": "nonbinary"})["gender"] == ""
    assert profile_features({"ProfileId": pid(1), "Gender": "MALE", "GenderString": "female"})["gender"] == "MALE"


def test_profile_features_us_date_is_month_first():
    f = profile_features({"ProfileId": pid(1), "BirthDate": "04/05/1980", "Address": {"Country": "USA"}}, "GB")
    assert f["dob"] == "1980-04-05"
    f = profile_features({"ProfileId": pid(1), "BirthDate": "04/05/1980", "Address": {"Country": "Germany"}}, "US")
    assert f["dob"] == "1980-05-04"


# ------------------------------------------------------------------------- Beam


def test_normalize_and_term_frequencies_transforms():
    profiles = [
        {"ProfileId": pid(1), "LastName": "Smith", "PhoneNumber": "+1 415 555 2671"},
        {"ProfileId": pid(2), "LastName": "SMITH", "PhoneNumber": "(415) 555-2671"},
        {"ProfileId": pid(3), "LastName": "Pantazopoulos"},
        {"ProfileId": pid(4), "LastName": "Smith", "PhoneNumber": "bad"},
    ]
    with beam.Pipeline(runner="FnApiRunner") as p:
        features = (
            p | beam.Create(profiles)
            | NormalizeProfiles("US")
            | AttachTermFrequencies(["last", "phones", "last"])
        )
        assert_that(
            features | beam.Map(lambda f: (f["id"], f["last"], f["phones"], f["invalid"], f["tf"])),
            equal_to([
                (pid(1), "smith", ("+14155552671",), (), {"last": {"smith": 0.75}, "phones": {"+14155552671": 0.5}}),
                (pid(2), "smith", ("+14155552671",), (), {"last": {"smith": 0.75}, "phones": {"+14155552671": 0.5}}),
                (pid(3), "pantazopoulos", (), (), {}),      # held by one profile: no share
                (pid(4), "smith", (), ("PhoneNumber",), {"last": {"smith": 0.75}}),
            ]))


def test_term_frequencies_count_a_value_only_from_its_minimum():
    profiles = [{"ProfileId": pid(i), "FirstName": "Jean", "LastName": name}
                for i, name in enumerate(["Martin"] * 3 + ["Dubois"] * 2, start=1)]
    with beam.Pipeline(runner="FnApiRunner") as p:
        features = p | beam.Create(profiles) | NormalizeProfiles("US") | AttachTermFrequencies(
            term_frequency_fields({"comparisons": [
                {"name": "first_name", "term_frequency": {"field": "first", "levels": ["exact"],
                                                          "given": {"comparison": "last_name", "joint_field": "name_pair",
                                                                    "min_profiles": 3}}},
                {"name": "last_name", "term_frequency": {"field": "last", "levels": ["exact"]}}]}))
        assert_that(features | beam.Map(lambda f: (f["last"], f["tf"])), equal_to(
            [("martin", {"first": {"jean": 1.0}, "last": {"martin": 0.6}, "name_pair": {"jean|martin": 0.6}})] * 3
            + [("dubois", {"first": {"jean": 1.0}, "last": {"dubois": 0.4}})] * 2))   # 2 < 3: not common


def test_term_frequency_fields_of_the_default_model():
    assert term_frequency_fields(default_model()) == {
        "first": 2, "last": 2, "emails": 2, "phones": 2, "name_pair": JOINT_MIN_PROFILES, "dob": 25, "postcodes": 2}


@pytest.mark.parametrize("email, household", [
    ("thelangwrights5829@yahoo.ca", True), ("the.smiths@example.com", True), ("smithfamily@example.com", True),
    ("familia.garcia@example.es", True), ("allen.home3555@comcast.net", True), ("home@example.com", True),
    ("theodore.smith@example.com", False), ("thomas@example.com", False), ("homer.simpson@example.com", False),
    ("mary.hale@example.com", False), ("themes@example.com", False),
    ("kontakt@firma.de", True), ("contacto@empresa.es", True), ("accueil@societe.fr", True), ("ufficio@ditta.it", True),
    ("kontaktlos.klaus@example.de", False),
])
def test_household_email(email, household):
    assert household_email(email) is household


def test_normalize_and_term_frequencies_take_batches_and_keep_them():
    profiles = [{"ProfileId": pid(n), "LastName": "Smith" if n % 3 else "Jones", "FirstName": "Ann"}
                for n in range(1, 10)]
    one_by_one = [profile_features(pr, "US") for pr in profiles]
    with beam.Pipeline(runner="FnApiRunner") as p:
        batches = p | beam.Create([profiles[:4], profiles[4:]])
        features = batches | NormalizeProfiles("US") | AttachTermFrequencies(["last", "first"])
        assert_that(features | "Sizes" >> beam.Map(len), equal_to([4, 5]), label="SameBatches")
        assert_that(features | beam.FlatMap(lambda batch: [(f["id"], f["last"], f["tf"]) for f in batch]), equal_to(
            [(f["id"], f["last"], {"last": {f["last"]: (6 if f["last"] == "smith" else 3) / 9}, "first": {"ann": 1.0}})
             for f in one_by_one]), label="Features")


def test_fixed_lines_are_told_from_numbers_one_person_carries():
    profile = {"ProfileId": pid(1), "PhoneNumber": "020 7946 0018", "MobilePhoneNumber": "07911 123456",
               "BusinessPhoneNumber": "+1 415 555 2671", "HomePhoneNumber": "+1 415 555 2680"}
    features = profile_features(profile, default_region="GB")
    assert features["phones"] == ("+442079460018", "+447911123456", "+14155552680", "+14155552671")
    # a US number may be either (the plan cannot tell): the field it was entered in says which;
    # the London fixed line and the US home and business numbers are not one person's
    assert features["phones_personal"] == ("+447911123456",)
    profile = {"ProfileId": pid(1), "PhoneNumber": "+1 415 555 2671"}
    assert profile_features(profile)["phones_personal"] == ("+14155552671",)


def _parses(text, region):
    import phonenumbers
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, region))
    except phonenumbers.NumberParseException:
        return False


def test_a_phone_is_read_exactly_when_phonenumbers_calls_it_valid():
    # read_phone takes "has a type" for "valid" (one number_type call instead of is_valid_number
    # and number_type): over generated numbers of many countries, in every region they may be read
    # in, both say the same, and "fixed line" is number_type's.
    import phonenumbers

    from benchmarks.generate import generate
    from transforms.normalize import PHONE_FIELDS, read_phone

    from transforms.normalize import placeholder_number

    LINE_KIND = {phonenumbers.PhoneNumberType.FIXED_LINE: "fixed", phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "either",
                 **dict.fromkeys((phonenumbers.PhoneNumberType.TOLL_FREE, phonenumbers.PhoneNumberType.SHARED_COST,
                                  phonenumbers.PhoneNumberType.PREMIUM_RATE, phonenumbers.PhoneNumberType.UAN,
                                  phonenumbers.PhoneNumberType.VOICEMAIL), "service")}

    def kind(number):   # a desk's extension is its office's line
        found = LINE_KIND.get(phonenumbers.number_type(number), "")
        return "fixed" if number.extension and found != "service" else found

    checked = valid = 0
    for profile, _ in generate(400, seed=11):
        for raw in filter(None, (profile.get(field) for field in PHONE_FIELDS)):
            for region in ("US", "GB", "DE", "IN", "JP", "BR"):
                got = read_phone(raw, region)
                if got is None:
                    continue
                number = phonenumbers.parse(got[0], None)
                assert phonenumbers.is_valid_number(number) and not placeholder_number(number), (raw, region)
                # an extension makes a line its office's; the E.164 form has none, the number as written does
                written = next((phonenumbers.parse(text, region) for text in (raw, "+" + "".join(filter(str.isdigit, raw)))
                                if _parses(text, region)), number)
                assert got[1] in (kind(number), "fixed" if written.extension else None), (raw, region, got)
                valid += 1
            for text in (raw.strip(), "+" + "".join(ch for ch in raw if ch.isdigit())):
                try:
                    number = phonenumbers.parse(text, "US")
                except phonenumbers.NumberParseException:
                    continue
                checked += 1
                if phonenumbers.is_valid_number(number) and placeholder_number(number):
                    assert read_phone(text, "US") is None, text
                elif phonenumbers.is_valid_number(number):
                    assert read_phone(text, "US") == (phonenumbers.format_number(number, 0), kind(number)), text
                elif text.startswith("+"):
                    assert read_phone(text, "US") is None, text
    assert checked > 300 and valid > 300


@pytest.mark.parametrize("a, b, same", [
    ("AB12CD", " AB12CD\t", True), ("A\u030aB-1", "\u00c5B-1", True),   # spaces around; one text in two Unicode forms
    ("ab12cd", "AB12CD", False), ("\u00c5B-1", "AB-1", False), ("\u30a2\u30a4\u30a6", "\u3042\u3044\u3046", False),
    ("ACC 1", "ACC1", False),
])
def test_identifier_values_differ_unless_they_are_the_same_text(a, b, same):
    ids = [profile_features({"ProfileId": pid(n), "AccountNumber": v}, "US", ("AccountNumber",))["identifiers"]
           for n, v in ((1, a), (2, b))]
    assert (ids[0] == ids[1]) is same
    assert identifier_text("  ") == "" and identifier_text(None) == "" and identifier_text(5) == ""


@pytest.mark.parametrize("value, expected", [
    ("张伟", "张伟"), ("山田 太郎", "山田太郎"), ("حَسَن", "حسن"), ("محـمد", "محمد"), ("サトウ", "さとう"), ("서연", "서연"),
    ("Zoë", ""), ("Александр", ""), ("Γιώργος", ""), ("", ""), (None, ""), (7, ""),
])
def test_written_name_keeps_names_in_scripts_transliteration_loses(value, expected):
    assert written_name(value) == expected


def test_features_keep_names_as_written_only_when_needed():
    assert profile_features({"ProfileId": "a" * 32, "FirstName": "伟", "LastName": "张"})["written"] == ("伟", "", "张")
    assert profile_features({"ProfileId": "a" * 32, "FirstName": "Wei", "LastName": "Zhang"})["written"] == ""
    # the transliteration stays the name blocking and the fuzzy levels read
    assert profile_features({"ProfileId": "a" * 32, "FirstName": "伟", "LastName": "张"})["first"] == fold_name("伟") == "wei"


# ------------------------------------------------------- stand-ins for a value (a normaliser sweep's finds)


@pytest.mark.parametrize("raw", ["N/A", "n/a", "none", "TBD", "UNKNOWN", "XXXXX", "00000", "99999", "0", "-"])
def test_a_postcode_that_is_no_postcode_is_empty(raw):
    # two strangers who both typed "N/A" would share a postcode (a +9 weight in the sample's model)
    assert normalize_postcode(raw) == ""


@pytest.mark.parametrize("raw", ["22222", "33333", "44444", "1111", "999"])
def test_a_real_postcode_of_one_repeated_digit_is_kept(raw):
    # Arlington VA, Gütersloh, Newton Falls OH, Budapest XI; three nines are no placeholder's length
    assert normalize_postcode(raw) == raw


@pytest.mark.parametrize("raw", ["none@none.com", "NA@NA.COM", "noemail@example.com", "No-Email@gmail.com",
                                 "n.a@yahoo.com", "xxx@hotmail.com", "unknown@unknown.com", "anna@test.com",
                                 "declined@shop.example", "noreply@gmail.com", "x@x.com", "noemail@crm.example.com"])
def test_an_email_typed_for_want_of_one_is_flagged_not_compared(raw):
    assert normalize_email(raw) is None
    features = profile_features({"ProfileId": pid(1), "EmailAddress": raw})
    assert features["emails"] == () and features["invalid"] == ("EmailAddress",)


@pytest.mark.parametrize("raw, key", [
    ("no1@gmail.com", "no1@gmail.com"), ("n0123456@uni.example", "n0123456@uni.example"),   # someone's own
    # a word of the list at a company's own domain is someone's (a Korean Na, doubled initials, a team)
    ("na@hyundai.example.kr", "na@hyundai.example.kr"), ("mm@company.co", "mm@company.co"),
    ("test@realcompany.co", "test@realcompany.co"), ("n@nielsen.dk", "n@nielsen.dk"),
    ("test@myexample.com", "test@myexample.com"),   # not below example.com
    ("mailto:Ann.Lee@Example.org", "ann.lee@example.org"), ("Ann Lee <ann.lee@example.org>", "ann.lee@example.org"),
    ("\u200bann.lee@example.org", "ann.lee@example.org"), ("ann.lee@example.org\u200b", "ann.lee@example.org"),
])
def test_an_address_written_with_more_around_it_has_its_own_key(raw, key):
    assert normalize_email(raw)[1] == key


@pytest.mark.parametrize("raw, region", [
    ("9999999999", "IN"), ("+91 98765 43210", "IN"), ("07777 777777", "GB"), ("07000 000000", "GB"),
    ("06 00 00 00 00", "FR"), ("0400 000 000", "AU"), ("600 000 000", "ES"), ("(201) 555-5555", "US"),
    ("(212) 555-0100", "US"), ("+1 415 555 0199", "US"), ("212-555-1212", "US"), ("020 7000 0000", "GB"),
])
def test_a_number_typed_for_want_of_one_is_flagged_though_the_plan_calls_it_valid(raw, region):
    import phonenumbers

    assert phonenumbers.is_valid_number(phonenumbers.parse(raw, region))
    assert normalize_phone(raw, region) is None
    assert profile_features({"ProfileId": pid(1), "MobilePhoneNumber": raw}, region)["invalid"] == ("MobilePhoneNumber",)


@pytest.mark.parametrize("raw, region", [("1-800-FLOWERS", "US"), ("(800) 356-9377", "US"), ("0800 046 5011", "GB"),
                                         ("1300 655 506", "AU"), ("0345 300 0005", "GB"), ("0900 123 4596", "NL")])
def test_a_number_that_reaches_a_business_whoever_dials_it_is_no_ones(raw, region):
    # toll-free, shared-cost, premium and company numbers: valid (not flagged) and never compared,
    # so two customers who typed the shop's number share nothing
    import phonenumbers

    assert phonenumbers.is_valid_number(phonenumbers.parse(raw, region))
    features = profile_features({"ProfileId": pid(1), "MobilePhoneNumber": raw}, region)
    assert features["phones"] == () and features["phones_personal"] == () and features["invalid"] == ()


@pytest.mark.parametrize("raw, region", [("+86 138 8888 8888", "CN"), ("+971 50 777 7777", "AE"),
                                         ("+7 926 111-11-11", "RU"), ("+1 212 777 7777", "US")])
def test_a_golden_number_after_an_operators_prefix_is_someones(raw, region):
    # numbers people pay for: one digit repeated after a prefix of the operator's own
    assert profile_features({"ProfileId": pid(1), "MobilePhoneNumber": raw}, region)["phones"] != ()


def test_a_business_keeps_its_own_service_number_as_a_shared_line():
    # a company's 1300 or 0330 number is its own: two profiles of one company may share it, as an
    # office's line (not one person's); a person's BusinessPhoneNumber is their company's too
    company = profile_features({"ProfileId": pid(1), "ProfileType": "ACCOUNT_PROFILE", "PhoneNumber": "1300 655 506"}, "AU")
    assert company["phones"] == ("+611300655506",) and company["phones_personal"] == ()
    work = profile_features({"ProfileId": pid(2), "BusinessPhoneNumber": "0345 300 0005"}, "GB")
    assert work["phones"] == ("+443453000005",) and work["phones_personal"] == ()


def test_digits_guessed_into_a_premium_number_are_read_in_the_country_of_the_other_numbers():
    # 27-92295-5554 with a "+" put before it is a South African premium number; beside a Brazilian
    # mobile it is a Brazilian one
    profile = {"ProfileId": pid(1), "PhoneNumber": "27-92295-5554", "MobilePhoneNumber": "+55 11 98765 4322"}
    assert profile_features(profile)["phones"] == ("+5527922955554", "+5511987654322")


def test_an_extension_is_a_desk_behind_an_office_line_not_one_persons_number():
    mine = profile_features({"ProfileId": pid(1), "MobilePhoneNumber": "+44 7911 123456"}, "GB")
    desk = profile_features({"ProfileId": pid(2), "MobilePhoneNumber": "+44 20 7946 0958 ext. 101"}, "GB")
    cell = profile_features({"ProfileId": pid(3), "MobilePhoneNumber": "+1 415 555 2671 x245"}, "US")
    assert mine["phones_personal"] == ("+447911123456",)
    assert desk["phones"] == ("+442079460958",) and desk["phones_personal"] == ()
    assert cell["phones"] == ("+14155552671",) and cell["phones_personal"] == ()


@pytest.mark.parametrize("last, expected", [
    ("Johnson 3rd", ("johnson", "iii")), ("Johnson 2nd", ("johnson", "ii")), ("Johnson 4th", ("johnson", "iv")),
    ("Johnson Jr., MD", ("johnson", "jr")), ("Johnson III, Esq.", ("johnson", "iii")), ("Johnson Jr PhD", ("johnson", "jr")),
    ("Johnson MD", ("johnson", "")), ("Pere", ("pere", "")), ("Joan Pere", ("joan pere", "")), ("Smith V", ("smith v", "")),
])
def test_generations_written_as_ordinals_or_before_a_degree(last, expected):
    features = profile_features({"ProfileId": pid(1), "FirstName": "Robert", "LastName": last})
    assert (features["last"], features["suffix"]) == expected


@pytest.mark.parametrize("raw", ["Not Provided", "Anonymous", "FNU", "LNU", "Valued Customer", "n/a", "Mr."])
def test_a_name_typed_for_want_of_one_is_no_name(raw):
    assert fold_name(raw) == ""


@pytest.mark.parametrize("raw", ["Nil", "Anon", "Guest", "Md", "Mba", "Edd", "Ng"])
def test_a_name_that_is_also_a_word_of_the_lists_is_a_name(raw):
    # Nil (Catalan, Turkish), Anon (Thai), Guest (English surname), Md (Mohammad), Mba (Fang), Edd
    assert fold_name(raw) == raw.lower()


def test_family_names_that_look_like_degrees_are_kept():
    assert [profile_features({"ProfileId": pid(1), "LastName": last})["last"] for last in ("Nguema Mba", "Ondo Edd")] == [
        "nguema mba", "ondo edd"]


@pytest.mark.parametrize("raw, region, expected", [
    ("4/5/1980 0:00", "US", "1980-04-05"), ("04.05.1980 00:00:00", "DE", "1980-05-04"),
    ("4/5/1980 12:00:00 AM", "US", "1980-04-05"),
    ("03/04/1980", "PR", "1980-03-04"), ("03/04/1980", "GU", "1980-03-04"),      # US territories write month first
    ("4 Sept 1980", "", "1980-09-04"), ("4 September 1980", "", "1980-09-04"), ("Sep. 4, 1980", "", "1980-09-04"),
    ("4 marraskuuta 1980", "", None),     # Finnish November, not March
    # other languages' months begin like English ones, and a slip is still read
    ("4 Mayo 1980", "", "1980-05-04"), ("12 Juli 1980", "", "1980-07-12"), ("03-marzo-1975", "", "1975-03-03"),
    ("14 Febuary 1991", "", "1991-02-14"),
    ("1904-01-01", "", None),   # the 1904 date system's zero
])
def test_birth_dates_time_of_day_territories_and_month_names_read_whole(raw, region, expected):
    assert normalize_birth_date(raw, region) == expected


def test_a_continent_is_not_the_one_country_whose_name_holds_it():
    assert [country_code(value) for value in ("Africa", "Europe", "Asia", "South Africa", "Korea, Republic of")] == [
        "", "", "", "ZA", "KR"]


@pytest.mark.parametrize("raw, region, e164", [
    ("415 555 2671 (work)", "US", "+14155552671"), ("415 555 2671 cell", "US", "+14155552671"),
    ("415-555-2671 (H)", "US", "+14155552671"), ("07911 123456 mobile", "GB", "+447911123456"),
    ("020 7946 0958 [office]", "GB", "+442079460958"),
    # Mexican mobiles as written until 2019, with a 1 after the country code
    ("+52 1 55 1234 5679", "MX", "+525512345679"), ("52 1 55 1234 5679", "US", "+525512345679"),
])
def test_a_word_naming_the_line_and_mexicos_old_mobile_form_are_read_past(raw, region, e164):
    assert normalize_phone(raw, region) == e164


def test_a_vanity_number_is_still_read_as_letters():
    assert normalize_phone("1-800-FLOWERS", "US") == "+18003569377"
    assert normalize_phone("415 555 2671 (the shop)", "US") is None   # not a word naming the line: flagged


# ---------------------------------------------------------------- business profiles (a sweep's finds)


@pytest.mark.parametrize("raw, folded", [("ACME Corp.", "acme"), ("Acme Corporation", "acme"), ("ZENITH CO.", "zenith"),
                                         ("ООО «Ромашка»", "romashka"), ("OOO Romashka", "romashka"),
                                         ("Acme Holdings Ltd", "acme holdings"), ("The Company Ltd", "the company ltd")])
def test_a_business_name_is_compared_without_its_legal_form(raw, folded):
    assert profile_features({"ProfileId": pid(1), "BusinessName": raw})["business"] == folded


@pytest.mark.parametrize("party, expected", [({"PartyTypeString": "Company"}, "ACCOUNT_PROFILE"),
                                             ({"PartyTypeString": "organisation"}, "ACCOUNT_PROFILE"),
                                             ({"PartyType": "BUSINESS"}, "ACCOUNT_PROFILE"),
                                             ({"PartyTypeString": "Individual"}, ""),
                                             ({"PartyType": "BUSINESS", "ProfileType": "PROFILE"}, "PROFILE")])
def test_a_business_written_in_free_text_is_a_business(party, expected):
    assert profile_features({"ProfileId": pid(1), **party})["type"] == expected


def test_a_business_number_the_plan_cannot_place_is_its_offices_line():
    # a US reception number in PhoneNumber: one person's on a person's profile, the office's on a business's
    person = profile_features({"ProfileId": pid(1), "PhoneNumber": "+1 415 555 2671"})
    company = profile_features({"ProfileId": pid(2), "ProfileType": "ACCOUNT_PROFILE", "PhoneNumber": "+1 415 555 2671",
                                "MobilePhoneNumber": "+44 7911 123456"})
    assert person["phones_personal"] == ("+14155552671",)
    assert company["phones"] == ("+14155552671", "+447911123456") and company["phones_personal"] == ("+447911123456",)


@pytest.mark.parametrize("email", ["customercare@starbucks.example", "finance@acme.example", "invoices@acme.example",
                                   "info@a.example"])
def test_a_companys_shared_desk_is_an_offices_address_and_no_user_name(email):
    features = profile_features({"ProfileId": pid(1), "ProfileType": "ACCOUNT_PROFILE", "EmailAddress": email})
    assert features["household_emails"] == features["emails"] and features["personal_emails"] == ()
    assert features["email_users_specific"] == ()    # info@a and info@b are not "the same user name"
