"""People who share a home, a building, an office or a name, against one person entered twice.

Each case is two crafted profiles and what the shipped model must say about the pair: the
guard that holds it for review, or that none does (the same person, who must still merge).
The levels these guards read (flats, middle names, generational suffixes, names of their own,
lines a household shares) are tested one by one below the table.
"""
from __future__ import annotations

import pytest

from tests.helpers import features, fitted_model, pid
from transforms.compare import Scorer, comparison_vectors
from transforms.normalize import address_units, household_email, profile_features, split_generation

MODEL = fitted_model(default_guards=True)
SCORER = Scorer(MODEL)


def us_home(line: str, city: str = "Columbus", postcode: str = "43212") -> dict:
    return {"Address1": line, "City": city, "PostalCode": postcode, "Country": "US"}


def pair_view(left: dict, right: dict) -> tuple[dict, list[str]]:
    """(level label per comparison, guards) of two profiles under the shipped model."""
    a = features(dict(left, ProfileId=pid(1)))
    b = features(dict(right, ProfileId=pid(2)))
    pattern = comparison_vectors(MODEL, [a], [b])[0]
    labels = {c["name"]: c["levels"][int(level)]["label"] for c, level in zip(MODEL["comparisons"], pattern)}
    return labels, SCORER.guards(pattern)


# (case, left, right, guard that must hold the pair or None when no guard may)
CASES = [
    ("three namesakes in flats of one building",
     {"FirstName": "Wei", "LastName": "Wang", "BirthDate": "1979-03-02", "Address": us_home("41-60 Main St Apt 3F", "Flushing", "11355")},
     {"FirstName": "Wei", "LastName": "Wang", "MobilePhoneNumber": "+19173328841", "Address": us_home("41-60 Main St Apt 7A", "Flushing", "11355")},
     "nothing but names"),
    ("namesakes in flats of one building, birth dates a year apart",
     {"FirstName": "Qiang", "LastName": "Li", "BirthDate": "1985-03-02", "MobilePhoneNumber": "(718) 353-2210",
      "Address": us_home("136-20 38th Ave Apt 5C", "Flushing", "11354")},
     {"FirstName": "Qiang", "LastName": "Li", "BirthDate": "1985-11-20", "MobilePhoneNumber": "(347) 612-8874",
      "Address": us_home("136-20 38th Ave Apt 11G", "Flushing", "11354")},
     "namesakes: different phones"),
    ("namesakes in one postcode with their own phones",
     {"FirstName": "Anh", "LastName": "Nguyen", "BirthDate": "1971-02-11", "MobilePhoneNumber": "+17148931144",
      "Address": us_home("9200 Bolsa Ave", "Westminster", "92683")},
     {"FirstName": "Anh", "LastName": "Nguyen", "MobilePhoneNumber": "+16572285519",
      "Address": us_home("14500 Brookhurst St", "Westminster", "92683")},
     "namesakes: different phones"),
    ("father and son: Jr. on one, the home line shared",
     {"FirstName": "Robert", "LastName": "Johnson", "HomePhoneNumber": "(614) 488-2210", "MobilePhoneNumber": "(614) 571-9034",
      "EmailAddress": "bob.johnson55@aol.com", "Address": us_home("1880 Northwest Blvd")},
     {"FirstName": "Robert", "LastName": "Johnson Jr.", "BirthDate": "04/11/1992", "HomePhoneNumber": "614-488-2210",
      "MobilePhoneNumber": "614-209-7781", "EmailAddress": "rjohnsonjr92@gmail.com", "Address": us_home("1880 Northwest Blvd")},
     "different generations"),
    ("father and son of one name, different middle names",
     {"FirstName": "Michael", "MiddleName": "James", "LastName": "O'Brien", "HomePhoneNumber": "(617) 325-4471",
      "EmailAddress": "mobrien@comcast.net", "Address": us_home("56 Corey St", "Boston", "02132")},
     {"FirstName": "Michael", "MiddleName": "Patrick", "LastName": "OBrien", "BirthDate": "1993-07-19",
      "HomePhoneNumber": "617.325.4471", "Address": us_home("56 Corey Street", "Boston", "02132")},
     "different middle names"),
    ("a couple: Sam and Samantha, born two years apart",
     {"FirstName": "Sam", "LastName": "Reed", "BirthDate": "1982-04-02", "HomePhoneNumber": "0113 268 0175",
      "EmailAddress": "reedfamily@btinternet.com", "Address": {"Address1": "31 Otley Road", "City": "Leeds", "PostalCode": "LS6 3AA", "Country": "GB"}},
     {"FirstName": "Samantha", "LastName": "Reed", "BirthDate": "1984-09-17", "HomePhoneNumber": "+44 113 268 0175",
      "EmailAddress": "reedfamily@btinternet.com", "Address": {"Address1": "31 Otley Rd", "City": "Leeds", "PostalCode": "LS6 3AA", "Country": "GB"}},
     "names alike, different birth dates, one household"),
    ("siblings Minh and Linh, born four years apart: the family's landline and home",
     {"FirstName": "Minh", "LastName": "Nguyen", "BirthDate": "1990-03-12", "HomePhoneNumber": "(714) 893-1144",
      "Address": us_home("9200 Bolsa Ave", "Westminster", "92683")},
     {"FirstName": "Linh", "LastName": "Nguyen", "BirthDate": "1994-08-30", "HomePhoneNumber": "714-893-1144",
      "Address": us_home("9200 Bolsa Ave", "Westminster", "92683")},
     "names alike, different birth dates, one household"),
    ("a couple Jan and Jana, one home: names one letter apart",
     {"FirstName": "Jan", "LastName": "Novak", "BirthDate": "1980-01-05", "HomePhoneNumber": "+420 222 333 444",
      "Address": {"Address1": "Vinohradska 12", "City": "Praha", "PostalCode": "120 00", "Country": "CZ"}},
     {"FirstName": "Jana", "LastName": "Novakova", "BirthDate": "1983-06-21", "HomePhoneNumber": "222 333 444",
      "Address": {"Address1": "Vinohradská 12", "City": "Praha", "PostalCode": "12000", "Country": "CZ"}},
     "names alike, different birth dates, one household"),
    ("brothers known by their initials only: R. and S. Iyer, the family's landline and home",
     {"FirstName": "R.", "LastName": "Iyer", "HomePhoneNumber": "+91 44 2434 5566",
      "Address": {"Address1": "12 TTK Road, Alwarpet", "City": "Chennai", "PostalCode": "600018", "Country": "IN"}},
     {"FirstName": "S.", "LastName": "Iyer", "HomePhoneNumber": "044 2434 5566",
      "Address": {"Address1": "12 TTK Road, Alwarpet", "City": "Chennai", "PostalCode": "600018", "Country": "IN"}},
     "a family name and a household"),
    ("namesakes in two flats of one building, flats written the Spanish way",
     {"FirstName": "María", "LastName": "García", "MobilePhoneNumber": "+34 612 345 678",
      "Address": {"Address1": "Calle de Alcalá 120, 3º B", "City": "Madrid", "PostalCode": "28009", "Country": "ES"}},
     {"FirstName": "Maria", "LastName": "Garcia", "MobilePhoneNumber": "+34 699 876 543",
      "Address": {"Address1": "Calle de Alcalá 120, 5º A", "City": "Madrid", "PostalCode": "28009", "Country": "ES"}},
     "namesakes: different phones"),
    ("coworkers Chris and Christine: the front desk's line and info@",
     {"FirstName": "Chris", "LastName": "Lee", "BusinessName": "Lee Family Dental", "BusinessPhoneNumber": "(206) 324-8800",
      "BusinessEmailAddress": "info@leefamilydental.com", "Address": us_home("1200 S Jackson St", "Seattle", "98144")},
     {"FirstName": "Christine", "LastName": "Lee", "BusinessName": "Lee Family Dental", "BusinessPhoneNumber": "206-324-8800",
      "BusinessEmailAddress": "info@leefamilydental.com", "MobilePhoneNumber": "(206) 778-3021",
      "Address": us_home("1200 S Jackson St", "Seattle", "98144")},
     "a nickname and an office"),
    ("siblings Daniel and Danielle: the family's email and home line",
     {"FirstName": "Daniel", "LastName": "Park", "HomePhoneNumber": "(503) 224-1180", "EmailAddress": "parkfamily@gmail.com",
      "Address": us_home("700 NW Everett St", "Portland", "97209")},
     {"FirstName": "Danielle", "LastName": "Park", "HomePhoneNumber": "503-224-1180", "EmailAddress": "parkfamily@gmail.com",
      "Address": us_home("700 NW Everett St", "Portland", "97209")},
     "a family name and a household"),
    ("a call-made profile with no name: the household's address, landline and account",
     {"HomePhoneNumber": "(614) 488-2210", "AccountNumber": "77120-4", "Address": us_home("1880 Northwest Blvd")},
     {"FirstName": "Linda", "LastName": "Okafor", "BirthDate": "1961-05-30", "HomePhoneNumber": "614-488-2210",
      "AccountNumber": "77120-4", "MobilePhoneNumber": "(614) 330-9912", "Address": us_home("1880 Northwest Blvd")},
     "no names and nothing personal"),
    ("two profiles with no names: one address, one account, birth dates years apart",
     {"BirthDate": "1988-02-14", "AccountNumber": "A-55310", "Address": us_home("77 Oak St Apt 2")},
     {"BirthDate": "1990-10-01", "AccountNumber": "A-55310", "PhoneNumber": "(614) 488-7777", "Address": us_home("77 Oak St Apt 2")},
     "no names and nothing personal"),
    # one person, who must still merge
    ("one person: a call-made profile with no name and the same mobile",
     {"MobilePhoneNumber": "+1 614 330 9912"},
     {"FirstName": "Linda", "LastName": "Okafor", "MobilePhoneNumber": "(614) 330-9912", "Address": us_home("1880 Northwest Blvd")},
     None),
    ("one person: nickname, the same mobile, one address",
     {"FirstName": "Jean", "LastName": "Chaufort", "PhoneNumber": "0613553684",
      "Address": {"Address1": "37 pl. Pasteur", "City": "Lille", "PostalCode": "59024", "Country": "FR"}},
     {"FirstName": "Jen", "LastName": "Chaufort", "PhoneNumber": "0033 6 13 55 36 84",
      "Address": {"Address1": "37 PL. PASTEUR", "City": "Lille", "PostalCode": "59024", "Country": "FR"}},
     None),
    ("one person: Bill and William, one birth date, one mobile",
     {"FirstName": "William", "LastName": "Harris", "BirthDate": "1975-04-02", "MobilePhoneNumber": "+44 7712 300123",
      "Address": {"Address1": "3 Mill Lane", "City": "Oxford", "PostalCode": "OX4 1AA", "Country": "GB"}},
     {"FirstName": "Bill", "LastName": "Harris", "BirthDate": "02/04/1975", "MobilePhoneNumber": "07712300123",
      "Address": {"Address1": "3 Mill Ln", "City": "Oxford", "PostalCode": "OX4 1AA", "Country": "GB"}},
     None),
    ("one person: Jr. on both, one flat written two ways",
     {"FirstName": "Robert", "LastName": "Johnson Jr", "MobilePhoneNumber": "(614) 209-7781", "Address": us_home("1880 Northwest Blvd Apt 4")},
     {"FirstName": "Robert", "LastName": "Johnson Jr.", "MobilePhoneNumber": "614-209-7781", "Address": us_home("1880 Northwest Blvd #4")},
     None),
    ("one person: a middle initial and the middle name, the same email",
     {"FirstName": "John", "MiddleName": "R.", "LastName": "Mitchell", "EmailAddress": "jrm1946@gmail.com"},
     {"FirstName": "John", "MiddleName": "Robert", "LastName": "Mitchell", "EmailAddress": "j.r.m.1946@gmail.com"},
     None),
    ("one person: a typo in the first name at one address",
     {"FirstName": "Frank", "LastName": "Weber", "MobilePhoneNumber": "015631-958962",
      "Address": {"Address1": "Friedrichstr. 75", "PostalCode": "22336", "Country": "DE"}},
     {"FirstName": "Frnk", "LastName": "Weber", "PhoneNumber": "0371-3352315",
      "Address": {"Address1": "Friedrichstr. 75", "PostalCode": "22336", "Country": "DE"}},
     None),
]


@pytest.mark.parametrize("case,left,right,guard", CASES, ids=[case[0] for case in CASES])
def test_a_household_is_held_and_one_person_is_not(case, left, right, guard):
    labels, guards = pair_view(left, right)
    if guard is None:
        assert guards == [], (labels, guards)
    else:
        assert guard in guards, (labels, guards)


# ---------------------------------------------------------------------------- flats


@pytest.mark.parametrize("line,units", [
    ("136-20 38th Ave Apt 5C", ("5c",)),
    ("8333 NW 53rd St Ste 450 #CCS 77120", ("450", "ccs77120")),
    ("Flat B, 12 High St", ("b",)),
    ("4/123 Main Street", ("4",)),
    ("Bloco B, Apto 40", ("b", "40")),   # a block of a condominium, and a flat in it
    ("122 Howarth Place Villa 19", ("19",)),
    ("12 Apartment Road", ()),
    ("Résidence Les Pins", ()),
    # flats written the local way
    ("Calle de Alcalá 120, 3º B", ("3b",)), ("Calle Mayor 3, 4º izq.", ("4izq",)), ("Calle Mayor 3, 2º 1ª", ("21",)),
    ("Av. Insurgentes Sur 1500 Depto 702", ("702",)), ("ul. Tverskaya d. 10 kv. 5", ("5",)),
    ("Olympic-ro 300, 101동 1203호", ("101dong", "1203ho")), ("Hauptstraße 5, Top 3", ("3",)),
    ("Via Roma 3 int. 4", ("4",)), ("10 Top Road", ()), ("Sinsa-dong 12", ()),
])
def test_units_read_from_address_lines(line, units):
    assert address_units({"Address1": line}) == units


def test_units_come_from_the_address_whose_line_is_compared():
    profile = {"ProfileId": pid(1), "Address": {"City": "Leeds"},
               "ShippingAddress": {"Address1": "9 Park Row", "Address2": "Flat 2"},
               "BillingAddress": {"Address1": "1 Bank St", "Address2": "Suite 300"}}
    found = profile_features(profile)
    assert found["address"] == "9 park row flat 2" and found["units"] == ("2",)


def test_another_flat_of_one_building_is_not_the_same_address():
    home = us_home("41-60 Main St Apt 12B", "Flushing", "11355")
    assert pair_view({"Address": home}, {"Address": dict(home, Address1="41-60 Main St Apt 7A")})[0]["location"] \
        == "same street, another flat"
    # a flat on one side only, or one flat among the other's (a suite and a mailbox in it), may be one home
    assert pair_view({"Address": home}, {"Address": dict(home, Address1="41-60 Main St")})[0]["location"] \
        == "postcode and street"
    forwarder = us_home("8333 NW 53rd St Ste 450 #CCS 77120", "Doral", "33166")
    assert pair_view({"Address": forwarder}, {"Address": dict(forwarder, Address1="8333 NW 53rd St Ste 450")})[0]["location"] \
        == "postcode and street"
    assert pair_view({"Address": forwarder}, {"Address": dict(forwarder, Address1="8333 NW 53rd St Ste 450 #BOG 48213")})[0][
        "location"] == "same street, another flat"


# ------------------------------------------------------------- names and generations


@pytest.mark.parametrize("name,split", [
    ("johnson jr", ("johnson", "jr")), ("johnson junior", ("johnson", "jr")), ("smith iii", ("smith", "iii")),
    ("jr", ("jr", "")), ("li", ("li", "")), ("van der berg", ("van der berg", "")),
    ("santos filho", ("santos", "jr")), ("santos neto", ("santos", "iii")), ("dupont fils", ("dupont", "jr")),
    ("neto", ("neto", "")),
])
def test_split_generation(name, split):
    assert split_generation(name) == split


def test_initials_are_no_first_name_to_compare():
    for written in ("R.", "J. K.", "r"):
        found = profile_features({"ProfileId": pid(1), "FirstName": written, "LastName": "Iyer"})
        assert (found["first"], found["first_initial"], found["name_pair"]) == ("", written[0].lower(), "")
    assert profile_features({"ProfileId": pid(1), "FirstName": "J. Robert"})["first"] == "j robert"


def test_a_suffix_is_taken_off_the_name_it_follows():
    found = profile_features({"ProfileId": pid(1), "FirstName": "Robert", "LastName": "Johnson Jr."})
    assert (found["last"], found["suffix"], found["last_phonetic"]) == ("johnson", "jr", "JNSN")
    found = profile_features({"ProfileId": pid(1), "FirstName": "Robert", "MiddleName": "Sr", "LastName": "Johnson"})
    assert (found["middle"], found["suffix"]) == ("sr", "")  # a middle name of one word is kept as it is


@pytest.mark.parametrize("left,right,label", [
    ("James", "James", "exact"),
    ("J.", "James", "initial or first word"),
    ("Ann", "Ann Marie", "initial or first word"),
    ("Jon", "John", "jaro-winkler >= 0.88"),
    ("James", "Patrick", "else"),
    ("", "Patrick", "null"),
])
def test_middle_name_levels(left, right, label):
    labels, _ = pair_view({"FirstName": "Ann", "MiddleName": left}, {"FirstName": "Ann", "MiddleName": right})
    assert labels["middle_name"] == label


@pytest.mark.parametrize("left,right,label", [
    ("Johnson", "Johnson", "neither has one"),
    ("Johnson Jr", "Johnson Junior", "exact"),
    ("Johnson", "Johnson Jr", "else"),
    ("Johnson Sr", "Johnson Jr", "else"),
])
def test_generation_levels(left, right, label):
    labels, _ = pair_view({"FirstName": "Robert", "LastName": left}, {"FirstName": "Robert", "LastName": right})
    assert labels["generation"] == label
    assert pair_view({"EmailAddress": "a@example.com"}, {"LastName": right})[0]["generation"] == "null"


@pytest.mark.parametrize("left,right,label", [
    ("Mark", "Mary", "another name alike"),
    ("Daniel", "Danielle", "another name alike"),
    ("Dicky", "Ricky", "one typo"),              # both Richard's: not names of two people
    ("Frank", "Frnk", "jaro-winkler >= 0.92"),   # not a name of its own
    ("Bill", "William", "nickname"),
])
def test_names_of_their_own(left, right, label):
    labels, _ = pair_view({"FirstName": left, "LastName": "Hale"}, {"FirstName": right, "LastName": "Hale"})
    assert labels["first_name"] == label


# ---------------------------------------------------------------- shared lines and inboxes


def test_a_number_entered_as_a_home_or_business_line_is_a_fixed_line_where_the_plan_cannot_tell():
    found = profile_features({"ProfileId": pid(1), "HomePhoneNumber": "(614) 488-2210",
                              "BusinessPhoneNumber": "+1 206 324 8800", "MobilePhoneNumber": "(614) 571-9034"})
    assert found["phones"] == ("+16145719034", "+16144882210", "+12063248800")
    assert found["phones_personal"] == ("+16145719034",)
    # entered as a plain phone number too, it is one person's
    found = profile_features({"ProfileId": pid(1), "HomePhoneNumber": "(614) 488-2210", "PhoneNumber": "614 488 2210"})
    assert found["phones_personal"] == ("+16144882210",)
    # a plan that can tell keeps its word: a mobile in the home field stays a mobile, a fixed
    # line in the mobile field stays a fixed line
    found = profile_features({"ProfileId": pid(1), "HomePhoneNumber": "07911 123456"}, default_region="GB")
    assert found["phones_personal"] == ("+447911123456",)
    found = profile_features({"ProfileId": pid(1), "MobilePhoneNumber": "020 7946 0018"}, default_region="GB")
    assert found["phones"] == ("+442079460018",) and found["phones_personal"] == ()


def test_a_number_one_calls_home_and_the_other_plain_is_a_shared_fixed_line():
    labels, _ = pair_view({"HomePhoneNumber": "(614) 488-2210"}, {"PhoneNumber": "614-488-2210"})
    assert labels["phone"] == "same fixed line"
    labels, _ = pair_view({"MobilePhoneNumber": "(614) 488-2210"}, {"PhoneNumber": "614-488-2210"})
    assert labels["phone"] == "same number"


@pytest.mark.parametrize("email", ["info@leefamilydental.com", "office@kimparkcpa.com", "front.desk@clinic.example",
                                   "Sales@shop.example"])
def test_role_addresses_are_shared_ones(email):
    assert household_email(email.lower())


def test_a_personal_address_shared_beside_an_office_one_is_the_same_address():
    office = "info@whitcombedesign.com"
    labels, _ = pair_view({"EmailAddress": "cynthia76425@gmail.com", "BusinessEmailAddress": office},
                          {"EmailAddress": "cynthia76425+shop@gmail.com", "BusinessEmailAddress": office})
    assert labels["email"] == "same address"
    labels, _ = pair_view({"EmailAddress": "cynthia76425@gmail.com", "BusinessEmailAddress": office},
                          {"EmailAddress": "tom.w@gmail.com", "BusinessEmailAddress": office})
    assert labels["email"] == "same household address"
