"""Which crafted groups of look-alike profiles does the job merge, mixed into generated ones?

    python benchmarks/household_probe.py [--output DIR] [--background 3000] [--seed 5]
                                         [--runner FnApiRunner] [--keep]

The probe is 95 crafted profiles in 45 groups of two to six. A group is either one person entered several ways
(another script, a nickname, a married name, a phone in another notation) or different people who share a lot:
siblings, twins, couples, parents and children, coworkers, namesakes in one building. Within a group, profiles
with the same entity are one person; a group is "of one person" when all its profiles have one entity.

The groups are written after ``--background`` profiles made by the project's generator (``--seed``), the job
runs on the whole file in a subprocess (``python -m pipeline --input ... --runner ...``), and its
``merge_plan.jsonl`` and ``review.jsonl`` are read back. Printed: one line per group with its status and the
merges its profiles are in (``entity#n``, n the profile's place in the group; ``+k outside``: k profiles of the
merge are not of the group):

* ``ok``;
* ``FALSE MERGE``: a merge holds a profile of the group and a profile of another person, of the group or not;
* ``MISS``: one person's profiles are not all in one merge;

then, under each group that is not ok, what ``review.jsonl`` says about its profiles, and last

    groups of different people merged: X of Y; groups of one person left apart: Z of W

The files (``probe.jsonl``; ``truth.csv`` with ``profile_id,case,entity`` for the crafted profiles; the job's
output in ``out/``) go to ``--output``, or to a temporary directory that is removed at the end unless ``--keep``.
It is a measurement, not a test: the exit status is 0 whatever it finds; it is not 0 only when the job fails
(its own exit status) or a crafted phone number is not valid (2).
"""
from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import orjson
import phonenumbers

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.generate import generate  # noqa: E402

PHONE_FIELDS = ("PhoneNumber", "MobilePhoneNumber", "HomePhoneNumber", "BusinessPhoneNumber")


def _at(line: str, city: str, postcode: str, country: str = "US") -> dict:
    """An Address with a street line."""
    return {"Address1": line, "City": city, "PostalCode": postcode, "Country": country}


# (case, [(entity, profile fields), ...]). Every profile also gets a ProfileId, PartyType INDIVIDUAL and
# ProfileType PROFILE unless its fields say otherwise; a field set to None is left out. The people are
# invented; their phone numbers are only checked to be valid in form (``invalid_phones``), not to be unassigned.
CASES: list[tuple[str, list[tuple[str, dict]]]] = [
    # three different people named Wei Wang, each in a flat of their own in one large Flushing building
    ("A1_wangwei_building", [
        ("w1", dict(FirstName="Wei", LastName="Wang", MobilePhoneNumber="+17184612390",
                    EmailAddress="wangwei88@gmail.com", Address=_at("41-60 Main St Apt 12B", "Flushing", "11355"))),
        ("w2", dict(FirstName="Wei", LastName="Wang", MobilePhoneNumber="+19173328841",
                    PersonalEmailAddress="wei.wang.ny@yahoo.com",
                    Address=_at("41-60 Main St Apt 7A", "Flushing", "11355"))),
        ("w3", dict(FirstName="Wei", LastName="Wang", BirthDate="1979-03-02",
                    Address=_at("41-60 Main St Apt 3F", "Flushing", "11355"))),
    ]),
    # two people named Na Li in New York, the city alone for an address, own mobiles, no birth dates
    ("A2_lina_city", [
        ("l1", dict(FirstName="Na", LastName="Li", MobilePhoneNumber="+16467720913",
                    Address={"City": "New York", "Country": "US"})),
        ("l2", dict(FirstName="Na", LastName="Li", MobilePhoneNumber="+13474415528",
                    Address={"City": "New York", "Country": "US"})),
    ]),
    # one man in Chinese characters and in pinyin: the same mobile, birth date and email
    ("A3_wang_cjk_same", [
        ("x", dict(FirstName="伟", LastName="王", BirthDate="1990-08-15", MobilePhoneNumber="+8613812345678",
                   EmailAddress="wangwei.sh@163.com", Address=_at("淮海中路 300号", "上海", "200021", "CN"))),
        ("x", dict(FirstName="Wei", LastName="Wang", BirthDate="15/08/1990", MobilePhoneNumber="+86 138 1234 5678",
                   EmailAddress="wangwei.sh@163.com",
                   Address=_at("300 Huaihai Zhong Lu", "Shanghai", "200021", "CN"))),
    ]),
    # one Korean man spelt three ways (Min-jun, Minjun, in hangul), one mobile in three notations
    ("A4_kim_same", [
        ("k", dict(FirstName="Min-jun", LastName="Kim", BirthDate="1992-05-04", MobilePhoneNumber="+821023456789",
                   EmailAddress="minjun.kim92@naver.com", Address=_at("123 Teheran-ro", "Seoul", "06134", "KR"))),
        ("k", dict(FirstName="Minjun", LastName="Kim", MobilePhoneNumber="010-2345-6789",
                   EmailAddress="minjunkim92@naver.com", Address=_at("123 Teheran-ro", "Seoul", "06134", "KR"))),
        ("k", dict(FirstName="민준", LastName="김", BirthDate="1992-05-04", MobilePhoneNumber="010 2345 6789",
                   Address=_at("테헤란로 123", "서울", "06134", "KR"))),
    ]),
    # a Korean brother and sister, Min-jun and Min-seo Kim, sharing a home and its landline
    ("A5_kim_siblings", [
        ("son", dict(FirstName="Min-jun", LastName="Kim", HomePhoneNumber="02-3456-7890",
                     MobilePhoneNumber="010-3456-1122", Address=_at("45 Banpo-daero", "Seoul", "06500", "KR"))),
        ("dau", dict(FirstName="Min-seo", LastName="Kim", HomePhoneNumber="+82 2 3456 7890",
                     EmailAddress="minseo.kim@gmail.com", Address=_at("45 Banpo-daero", "Seoul", "06500", "KR"))),
    ]),
    # Vietnamese brothers, Van Anh and Văn Bình Nguyen, on a parent's mobile at one address
    ("A6_nguyen_brothers", [
        ("anh", dict(FirstName="Van Anh", LastName="Nguyen", MobilePhoneNumber="(408) 274-5531",
                     Address=_at("2150 Story Rd", "San Jose", "95122"))),
        ("binh", dict(FirstName="Văn Bình", LastName="Nguyễn", MobilePhoneNumber="+14082745531",
                      EmailAddress="binhnguyen2009@gmail.com", Address=_at("2150 Story Rd", "San Jose", "95122"))),
    ]),
    # Vietnamese sisters, Thi Lan and Thi Hoa Nguyen, on a parent's mobile, no address
    ("A6b_nguyen_sisters", [
        ("lan", dict(FirstName="Thi Lan", LastName="Nguyen", MobilePhoneNumber="+17145389012",
                     EmailAddress="lan.nguyen.tl@gmail.com")),
        ("hoa", dict(FirstName="Thi Hoa", LastName="Nguyen", MobilePhoneNumber="714-538-9012")),
    ]),
    # two people named Anh Van Nguyen in one town, on other streets, with other mobiles
    ("A7_nguyen_namesakes", [
        ("n1", dict(FirstName="Anh", MiddleName="Van", LastName="Nguyen", BirthDate="1971-02-11",
                    MobilePhoneNumber="+17148931144", Address=_at("9200 Bolsa Ave", "Westminster", "92683"))),
        ("n2", dict(FirstName="Anh", MiddleName="Van", LastName="Nguyen", MobilePhoneNumber="+16572285519",
                    Address=_at("14500 Brookhurst St", "Westminster", "92683"))),
    ]),
    # father Hassan Ali and son Ali Hassan (the names swapped) at one address and landline
    ("B1_patronymic_father_son", [
        ("father", dict(FirstName="Hassan", LastName="Ali", HomePhoneNumber="(313) 582-4410",
                        MobilePhoneNumber="(313) 909-2231", EmailAddress="hassan.ali1968@yahoo.com",
                        Address=_at("7012 Chase Rd", "Dearborn", "48126"))),
        ("son", dict(FirstName="Ali", LastName="Hassan", BirthDate="1996-09-30", HomePhoneNumber="313-582-4410",
                     MobilePhoneNumber="313-646-7720", EmailAddress="ali.hassan96@gmail.com",
                     Address=_at("7012 Chase Road", "Dearborn", "48126"))),
    ]),
    # two Mohammed / Muhammad Khans in one London postcode, born seven years apart
    ("B2_khan_namesakes", [
        ("k1", dict(FirstName="Mohammed", LastName="Khan", BirthDate="1980-06-14", MobilePhoneNumber="07911 123456",
                    Address=_at("12 Green Street", "London", "E7 8BZ", "GB"))),
        ("k2", dict(FirstName="Muhammad", LastName="Khan", BirthDate="1987-01-22", MobilePhoneNumber="07712 480982",
                    Address=_at("40 Green Street", "London", "E7 8BZ", "GB"))),
    ]),
    # one Mohammed / Muhammad Khan: the same mobile (+44 and 0 forms) and birth date
    ("B2b_khan_same", [
        ("k", dict(FirstName="Mohammed", LastName="Khan", BirthDate="1975-11-03", MobilePhoneNumber="+447956332118",
                   Address=_at("5 Soho Road", "Birmingham", "B21 9SN", "GB"))),
        ("k", dict(FirstName="Muhammad", LastName="Khan", BirthDate="03/11/1975", MobilePhoneNumber="07956 332118",
                   EmailAddress="m.khan75@hotmail.co.uk", Address={"City": "Birmingham", "Country": "GB"})),
    ]),
    # sisters María José and María Fernanda García López sharing a Madrid flat and landline
    ("B3_garcia_sisters", [
        ("mj", dict(FirstName="María José", LastName="García López", BirthDate="1999-04-12",
                    HomePhoneNumber="+34 915 23 45 67", MobilePhoneNumber="+34 612 34 56 78",
                    Address=_at("Calle de Alcalá 120", "Madrid", "28009", "ES"))),
        ("mf", dict(FirstName="María Fernanda", LastName="García López", HomePhoneNumber="915 23 45 67",
                    EmailAddress="mafer.garcia@gmail.com", Address=_at("C/ Alcalá, 120", "Madrid", "28009", "ES"))),
    ]),
    # sisters as above, but José and Fernanda entered as middle names
    ("B3b_garcia_sisters_middle", [
        ("mj", dict(FirstName="María", MiddleName="José", LastName="García López", BirthDate="2001-02-03",
                    HomePhoneNumber="+34 934 12 34 56", EmailAddress="mjgarcia01@gmail.com",
                    Address=_at("Carrer de Mallorca 200", "Barcelona", "08036", "ES"))),
        ("mf", dict(FirstName="María", MiddleName="Fernanda", LastName="García López",
                    HomePhoneNumber="934 12 34 56", MobilePhoneNumber="+34 655 44 33 22",
                    Address=_at("Carrer de Mallorca 200", "Barcelona", "08036", "ES"))),
    ]),
    # one man as José Luis García López and as Jose Garcia: the same mobile and email
    ("B4_garcia_same", [
        ("j", dict(FirstName="José Luis", LastName="García López", MobilePhoneNumber="+525512345678",
                   EmailAddress="jlgarcia@prodigy.net.mx",
                   Address=_at("Av. Insurgentes Sur 1500", "Ciudad de México", "03100", "MX"))),
        ("j", dict(FirstName="Jose", LastName="Garcia", MobilePhoneNumber="55 1234 5678",
                   EmailAddress="JLGarcia@prodigy.net.mx", Address={"City": "CDMX", "Country": "MX"})),
    ]),
    # father Robert Johnson and son "Johnson Jr." at one address and landline; only the son's birth date
    ("C1_jr_sr_no_dob", [
        ("sr", dict(FirstName="Robert", LastName="Johnson", HomePhoneNumber="(614) 488-2210",
                    MobilePhoneNumber="(614) 571-9034", EmailAddress="bob.johnson55@aol.com",
                    Address=_at("1880 Northwest Blvd", "Columbus", "43212"))),
        ("jr", dict(FirstName="Robert", LastName="Johnson Jr.", BirthDate="04/11/1992",
                    HomePhoneNumber="614-488-2210", MobilePhoneNumber="614-209-7781",
                    EmailAddress="rjohnsonjr92@gmail.com",
                    Address=_at("1880 Northwest Blvd", "Columbus", "43212"))),
    ]),
    # father and son Michael O'Brien, apart only in their middle names; only the son's birth date
    ("C1b_jr_sr_same_name", [
        ("sr", dict(FirstName="Michael", MiddleName="James", LastName="O'Brien", HomePhoneNumber="(617) 325-4471",
                    EmailAddress="mobrien@comcast.net", Address=_at("56 Corey St", "Boston", "02132"))),
        ("jr", dict(FirstName="Michael", MiddleName="Patrick", LastName="OBrien", BirthDate="1993-07-19",
                    HomePhoneNumber="617.325.4471", Address=_at("56 Corey Street", "Boston", "02132"))),
    ]),
    # father and son James Walker at one address and landline, both birth dates known (28 years apart)
    ("C2_jr_sr_dobs", [
        ("sr", dict(FirstName="James", LastName="Walker", BirthDate="1961-03-08", HomePhoneNumber="(404) 351-6620",
                    Address=_at("220 Peachtree Battle Ave", "Atlanta", "30305"))),
        ("jr", dict(FirstName="James", LastName="Walker", BirthDate="1989-10-27", HomePhoneNumber="(404) 351-6620",
                    MobilePhoneNumber="(404) 660-1830",
                    Address=_at("220 Peachtree Battle Ave", "Atlanta", "30305"))),
    ]),
    # father William and son Bill Turner at one Manchester address and landline; only the son's birth date
    ("C3_william_bill_father_son", [
        ("f", dict(FirstName="William", LastName="Turner", HomePhoneNumber="0161 496 0732",
                   Address=_at("14 Wilbraham Road", "Manchester", "M21 9AN", "GB"))),
        ("s", dict(FirstName="Bill", LastName="Turner", BirthDate="22/06/1994", HomePhoneNumber="+44 161 496 0732",
                   MobilePhoneNumber="07712 400417",
                   Address=_at("14 Wilbraham Rd", "Manchester", "M21 9AN", "GB"))),
    ]),
    # twins Jayden and Jaylen Brooks: one birth date, address and landline, own mobiles and emails
    ("D1_twins_jayden_jaylen", [
        ("t1", dict(FirstName="Jayden", LastName="Brooks", BirthDate="2004-02-17", HomePhoneNumber="(901) 372-5568",
                    MobilePhoneNumber="(901) 289-4410", EmailAddress="jaydenbrooks04@gmail.com",
                    Address=_at("3340 Kirby Pkwy", "Memphis", "38115"))),
        ("t2", dict(FirstName="Jaylen", LastName="Brooks", BirthDate="02/17/2004", HomePhoneNumber="901-372-5568",
                    MobilePhoneNumber="901-289-6652", EmailAddress="jaylen.brooks@icloud.com",
                    Address=_at("3340 Kirby Parkway", "Memphis", "38115"))),
    ]),
    # twins Louis and Louise Martin in Paris: one birth date, address and landline, a family email on one
    ("D2_twins_louis_louise", [
        ("t1", dict(FirstName="Louis", LastName="Martin", BirthDate="12/05/2001", HomePhoneNumber="01 42 68 53 00",
                    EmailAddress="martin.famille@orange.fr",
                    Address=_at("18 rue des Martyrs", "Paris", "75009", "FR"))),
        ("t2", dict(FirstName="Louise", LastName="Martin", BirthDate="2001-05-12",
                    HomePhoneNumber="+33 1 42 68 53 00", MobilePhoneNumber="06 12 34 56 78",
                    Address=_at("18 rue des Martyrs", "Paris", "75009", "FR"))),
    ]),
    # twins Ava and Eva Wilson in Leeds: one birth date and address, no phones, own emails
    ("D3_twins_ava_eva", [
        ("t1", dict(FirstName="Ava", LastName="Wilson", BirthDate="2003-09-09",
                    EmailAddress="ava.wilson03@gmail.com", Address=_at("7 Church Lane", "Leeds", "LS6 4NP", "GB"))),
        ("t2", dict(FirstName="Eva", LastName="Wilson", BirthDate="09/09/2003",
                    EmailAddress="evawilson2003@outlook.com",
                    Address=_at("7 Church Ln", "Leeds", "LS6 4NP", "GB"))),
    ]),
    # coworkers Chris and Christine Lee sharing the practice's switchboard and info@ address
    ("E1_coworkers_chris_christine", [
        ("c1", dict(FirstName="Chris", LastName="Lee", BusinessName="Lee Family Dental",
                    BusinessPhoneNumber="(206) 324-8800", BusinessEmailAddress="info@leefamilydental.com",
                    Address=_at("1200 S Jackson St", "Seattle", "98144"))),
        ("c2", dict(FirstName="Christine", LastName="Lee", BusinessName="Lee Family Dental",
                    BusinessPhoneNumber="206-324-8800", BusinessEmailAddress="info@leefamilydental.com",
                    MobilePhoneNumber="(206) 778-3021", Address=_at("1200 S Jackson St", "Seattle", "98144"))),
    ]),
    # coworkers Daniel and Danielle Kim sharing the firm's front desk and office@ address
    ("E2_coworkers_daniel_danielle", [
        ("d1", dict(FirstName="Daniel", LastName="Kim", BusinessName="Kim & Park CPA",
                    BusinessPhoneNumber="(213) 385-2200", BusinessEmailAddress="office@kimparkcpa.com",
                    Address=_at("3600 Wilshire Blvd Ste 1200", "Los Angeles", "90010"))),
        ("d2", dict(FirstName="Danielle", LastName="Kim", BusinessName="Kim & Park CPA",
                    BusinessPhoneNumber="213-385-2200", BusinessEmailAddress="office@kimparkcpa.com",
                    Address=_at("3600 Wilshire Blvd Suite 1200", "Los Angeles", "90010"))),
    ]),
    # coworkers Karen and Tom Miller sharing a switchboard and info@, first names unrelated
    ("E3_coworkers_control", [
        ("a", dict(FirstName="Karen", LastName="Miller", BusinessName="Acme Roofing",
                   BusinessPhoneNumber="(720) 344-0134", BusinessEmailAddress="info@acmeroofingco.com",
                   Address=_at("4500 Brighton Blvd", "Denver", "80216"))),
        ("b", dict(FirstName="Tom", LastName="Miller", BusinessName="Acme Roofing",
                   BusinessPhoneNumber="720-344-0134", BusinessEmailAddress="info@acmeroofingco.com",
                   Address=_at("4500 Brighton Blvd", "Denver", "80216"))),
    ]),
    # David Chen and his firm's ACCOUNT_PROFILE with the same mobile and email
    ("F1_account_vs_owner", [
        ("owner", dict(FirstName="David", LastName="Chen", MobilePhoneNumber="(510) 441-7723",
                       EmailAddress="david@chenplumbing.com", Address=_at("88 Grand Ave", "Oakland", "94612"))),
        ("biz", dict(PartyType="BUSINESS", ProfileType="ACCOUNT_PROFILE", BusinessName="Chen Plumbing LLC",
                     FirstName="David", LastName="Chen", MobilePhoneNumber="510-441-7723",
                     EmailAddress="david@chenplumbing.com", AccountNumber="ACC-77120",
                     Address=_at("88 Grand Ave", "Oakland", "94612"))),
    ]),
    # Sandra Okafor and her business's profile: PartyType BUSINESS but no ProfileType
    ("F2_business_party_vs_owner", [
        ("owner", dict(FirstName="Sandra", LastName="Okafor", MobilePhoneNumber="(832) 410-2287",
                       EmailAddress="sandra@okaforcatering.com", BirthDate="1979-12-02",
                       Address=_at("2100 Travis St", "Houston", "77002"))),
        ("biz", dict(PartyType="BUSINESS", FirstName="Sandra", LastName="Okafor", BusinessName="Okafor Catering",
                     MobilePhoneNumber="832-410-2287", BusinessEmailAddress="sandra@okaforcatering.com",
                     Address=_at("2100 Travis St", "Houston", "77002"), AccountNumber="B-20931", ProfileType=None)),
    ]),
    # a family of four (David, Diana, Daniel, Danielle Miller): one email, landline and address
    ("G1_family_daniel_danielle", [
        ("dad", dict(FirstName="David", LastName="Miller", HomePhoneNumber="(503) 246-7718",
                     EmailAddress="themillers@gmail.com", Address=_at("4410 SW Hewett Blvd", "Portland", "97221"),
                     BirthDate="1968-05-02")),
        ("mum", dict(FirstName="Diana", LastName="Miller", HomePhoneNumber="(503) 246-7718",
                     EmailAddress="themillers@gmail.com", Address=_at("4410 SW Hewett Blvd", "Portland", "97221"),
                     BirthDate="1970-08-19")),
        ("son", dict(FirstName="Daniel", LastName="Miller", HomePhoneNumber="(503) 246-7718",
                     EmailAddress="themillers@gmail.com", Address=_at("4410 SW Hewett Blvd", "Portland", "97221"))),
        ("dau", dict(FirstName="Danielle", LastName="Miller", HomePhoneNumber="(503) 246-7718",
                     EmailAddress="themillers@gmail.com", Address=_at("4410 SW Hewett Blvd", "Portland", "97221"))),
    ]),
    # mother Mai and daughter Mai Anh Tran sharing the mother's mobile and an address
    ("G2_mother_daughter_mai", [
        ("mom", dict(FirstName="Mai", LastName="Tran", MobilePhoneNumber="(281) 498-3320",
                     EmailAddress="maitran1965@yahoo.com", Address=_at("11210 Bellaire Blvd", "Houston", "77072"))),
        ("dau", dict(FirstName="Mai Anh", LastName="Tran", BirthDate="2006-03-14", MobilePhoneNumber="281-498-3320",
                     Address=_at("11210 Bellaire Blvd", "Houston", "77072"))),
    ]),
    # a mobile number that passed from Sarah Thompson to Marcus Reed
    ("H1_recycled_phone", [
        ("old", dict(FirstName="Sarah", LastName="Thompson", MobilePhoneNumber="(312) 805-4412",
                     EmailAddress="sthompson@gmail.com", Address=_at("1550 N Dearborn Pkwy", "Chicago", "60610"))),
        ("new", dict(FirstName="Marcus", LastName="Reed", MobilePhoneNumber="312-805-4412",
                     Address=_at("6100 S Cottage Grove Ave", "Chicago", "60637"))),
    ]),
    # a mobile number that passed between two Jessicas with different surnames, born eight years apart
    ("H2_recycled_same_first", [
        ("old", dict(FirstName="Jessica", LastName="Brown", BirthDate="1988-02-03",
                     MobilePhoneNumber="(702) 515-8820",
                     Address=_at("3300 S Maryland Pkwy", "Las Vegas", "89169"))),
        ("new", dict(FirstName="Jessica", LastName="Lopez", BirthDate="1996-10-21",
                     MobilePhoneNumber="702-515-8820", EmailAddress="jess.lopez96@gmail.com",
                     Address=_at("7000 W Charleston Blvd", "Las Vegas", "89117"))),
    ]),
    # three Garcias at one parcel forwarder's address, told apart by suite codes
    ("I1_forwarder_namesakes", [
        ("m1", dict(FirstName="Maria", LastName="Garcia", EmailAddress="mariagarcia.ccs@gmail.com",
                    Address=_at("8333 NW 53rd St Ste 450 #CCS 77120", "Doral", "33166"))),
        ("m2", dict(FirstName="María", LastName="García", MobilePhoneNumber="+573001234567",
                    Address=_at("8333 NW 53rd St Ste 450 #BOG 48213", "Doral", "33166"))),
        ("m3", dict(FirstName="Carlos", LastName="Garcia", MobilePhoneNumber="+584141234567",
                    Address=_at("8333 NW 53rd St Ste 450 #CCS 10982", "Doral", "33166"))),
    ]),
    # Emily Carter, later Emily Brooks: the same birth date, mobile and email, a new address
    ("J1_married_name", [
        ("e", dict(FirstName="Emily", LastName="Carter", BirthDate="1990-07-21", MobilePhoneNumber="(919) 604-3318",
                   EmailAddress="emily.carter90@gmail.com", Address=_at("410 Glenwood Ave", "Raleigh", "27603"))),
        ("e", dict(FirstName="Emily", LastName="Brooks", BirthDate="07/21/1990", MobilePhoneNumber="919-604-3318",
                   EmailAddress="Emily.Carter90@gmail.com", Address=_at("2200 Oberlin Rd", "Raleigh", "27608"))),
    ]),
    # Sophie Turner, later Sophie Hughes: the same mobile and birth date, a new email and address
    ("J2_married_name_gb", [
        ("s", dict(FirstName="Sophie", LastName="Turner", BirthDate="14/03/1988", MobilePhoneNumber="+447912654321",
                   EmailAddress="sophie.turner88@gmail.com",
                   Address=_at("22 Park Road", "Bristol", "BS3 1PX", "GB"))),
        ("s", dict(FirstName="Sophie", LastName="Hughes", BirthDate="1988-03-14", MobilePhoneNumber="07912 654321",
                   EmailAddress="sophiehughes@outlook.com", Address=_at("9 Elm Grove", "Bath", "BA1 7AB", "GB"))),
    ]),
    # William / Bill Harris, one man: a mobile in two forms, an email typo, one birth date
    ("K1_william_bill_same", [
        ("w", dict(FirstName="William", LastName="Harris", BirthDate="1975-04-02",
                   MobilePhoneNumber="+44 7712 300123", EmailAddress="will.harris@gmail.com",
                   Address=_at("3 Mill Lane", "Oxford", "OX4 1AA", "GB"))),
        ("w", dict(FirstName="Bill", LastName="Harris", BirthDate="02/04/1975", MobilePhoneNumber="07712300123",
                   EmailAddress="will.haris@gmail.com", Address={"Country": "United Kingdom"})),
    ]),
    # William / Bill Okonkwo, one man: nothing in common but the mobile and the city
    ("K2_william_bill_phone_only", [
        ("w", dict(FirstName="William", LastName="Okonkwo", MobilePhoneNumber="+44 7712 300555",
                   Address={"City": "London", "Country": "GB"})),
        ("w", dict(FirstName="Bill", LastName="Okonkwo", MobilePhoneNumber="07712 300555",
                   EmailAddress="billokonkwo@yahoo.co.uk", Address={"City": "London", "Country": "GB"})),
    ]),
    # Katherine / Kate Novak, one woman: one birth date, a typo in the email's domain
    ("K3_kate_email_typo", [
        ("k", dict(FirstName="Katherine", LastName="Novak", BirthDate="1983-12-30",
                   EmailAddress="katherine.novak83@gmail.com",
                   Address=_at("77 Queen St W", "Toronto", "M5H 2N2", "CA"))),
        ("k", dict(FirstName="Kate", LastName="Novak", BirthDate="1983-12-30",
                   EmailAddress="katherine.novak83@gmial.com", MobilePhoneNumber="(416) 728-0199")),
    ]),
    # two people named Wei Zhang in one postcode, on other streets, born six years apart
    ("R1_zhangwei_postcode_dob6y", [
        ("a", dict(FirstName="Wei", LastName="Zhang", BirthDate="1985-03-02", MobilePhoneNumber="(626) 288-4410",
                   EmailAddress="zhangwei1985@gmail.com",
                   Address=_at("500 W Garvey Ave", "Monterey Park", "91754"))),
        ("b", dict(FirstName="Wei", LastName="Zhang", BirthDate="1991-07-19", MobilePhoneNumber="(626) 571-3390",
                   EmailAddress="wzhang91@hotmail.com",
                   Address=_at("1200 S Atlantic Blvd", "Monterey Park", "91754"))),
    ]),
    # two people named Qiang Li in separate flats of one building, born within a year
    ("R2_liqiang_building_dob1y", [
        ("a", dict(FirstName="Qiang", LastName="Li", BirthDate="1985-03-02", MobilePhoneNumber="(718) 353-2210",
                   Address=_at("136-20 38th Ave Apt 5C", "Flushing", "11354"))),
        ("b", dict(FirstName="Qiang", LastName="Li", BirthDate="1985-11-20", MobilePhoneNumber="(347) 612-8874",
                   Address=_at("136-20 38th Ave Apt 11G", "Flushing", "11354"))),
    ]),
    # brothers Jean-Pierre and Jean-Luc Dubois sharing a Lyon address and landline
    ("R3_jeanpierre_jeanluc", [
        ("jp", dict(FirstName="Jean-Pierre", LastName="Dubois", HomePhoneNumber="04 78 42 16 30",
                    MobilePhoneNumber="06 71 22 43 18", Address=_at("12 rue Mercière", "Lyon", "69002", "FR"))),
        ("jl", dict(FirstName="Jean-Luc", LastName="Dubois", HomePhoneNumber="+33 4 78 42 16 30",
                    EmailAddress="jl.dubois@free.fr", Address=_at("12 rue Merciere", "Lyon", "69002", "FR"))),
    ]),
    # a couple, Sam and Samantha Reed, born two years apart, with a household email and landline
    ("R4_couple_sam_samantha", [
        ("h", dict(FirstName="Sam", LastName="Reed", BirthDate="1982-04-02", HomePhoneNumber="0113 268 0175",
                   EmailAddress="reedfamily@btinternet.com",
                   Address=_at("31 Otley Road", "Leeds", "LS6 3AA", "GB"))),
        ("w", dict(FirstName="Samantha", LastName="Reed", BirthDate="1984-09-17",
                   HomePhoneNumber="+44 113 268 0175", EmailAddress="reedfamily@btinternet.com",
                   Address=_at("31 Otley Rd", "Leeds", "LS6 3AA", "GB"))),
    ]),
    # a couple, Alex and Alexandra Novak, born three years apart, with one landline
    ("R4b_couple_alex_alexandra", [
        ("h", dict(FirstName="Alex", LastName="Novak", BirthDate="1979-01-15", HomePhoneNumber="(773) 281-4406",
                   MobilePhoneNumber="(773) 590-1123", Address=_at("2040 W Roscoe St", "Chicago", "60618"))),
        ("w", dict(FirstName="Alexandra", LastName="Novak", BirthDate="1982-06-30", HomePhoneNumber="773-281-4406",
                   MobilePhoneNumber="773-590-8876", Address=_at("2040 W Roscoe St", "Chicago", "60618"))),
    ]),
    # Taro Tanaka in kanji and in romaji: the same mobile, email and birth date
    ("R5_kanji_romaji_same", [
        ("t", dict(FirstName="太郎", LastName="田中", BirthDate="1980-02-14", MobilePhoneNumber="090-1234-5678",
                   EmailAddress="taro.tanaka@docomo.ne.jp",
                   Address=_at("渋谷区道玄坂1-2-3", "東京都", "150-0043", "JP"))),
        ("t", dict(FirstName="Taro", LastName="Tanaka", BirthDate="1980-02-14",
                   MobilePhoneNumber="+81 90 1234 5678", EmailAddress="taro.tanaka@docomo.ne.jp",
                   Address=_at("1-2-3 Dogenzaka, Shibuya-ku", "Tokyo", "150-0043", "JP"))),
    ]),
    # Francisco / Paco Hernández, one man: the same mobile, email and birth date
    ("R6_francisco_paco_same", [
        ("f", dict(FirstName="Francisco", LastName="Hernández", BirthDate="1977-10-04",
                   MobilePhoneNumber="+34 622 18 44 90", EmailAddress="fhernandez77@gmail.com",
                   Address=_at("Calle Sierpes 40", "Sevilla", "41004", "ES"))),
        ("f", dict(FirstName="Paco", LastName="Hernandez", BirthDate="04/10/1977", MobilePhoneNumber="622184490",
                   EmailAddress="fhernandez77@gmail.com", Address={"City": "Sevilla", "Country": "ES"})),
    ]),
    # Alexander Ivanov in Cyrillic and in Latin letters: the same mobile, email and birth date
    ("R7_cyrillic_same", [
        ("a", dict(FirstName="Александр", LastName="Иванов", BirthDate="1986-06-06",
                   MobilePhoneNumber="+7 916 123-45-67", EmailAddress="a.ivanov86@yandex.ru",
                   Address=_at("ул. Тверская 10", "Москва", "125009", "RU"))),
        ("a", dict(FirstName="Alexander", LastName="Ivanov", BirthDate="1986-06-06",
                   MobilePhoneNumber="+79161234567", EmailAddress="a.ivanov86@yandex.ru",
                   Address=_at("10 Tverskaya St", "Moscow", "125009", "RU"))),
    ]),
    # Robert / Bobby Castillo: a mobile in two notations, an email typo, one birth date
    ("R8_robert_bobby_same", [
        ("r", dict(FirstName="Robert", LastName="Castillo", BirthDate="1969-08-08",
                   MobilePhoneNumber="+1 (915) 433-2871", EmailAddress="rcastillo69@yahoo.com",
                   Address=_at("1400 N Mesa St", "El Paso", "79902"))),
        ("r", dict(FirstName="Bobby", LastName="Castillo", MobilePhoneNumber="915.433.2871",
                   EmailAddress="rcastilo69@yahoo.com")),
    ]),
]


def probe_profiles() -> list[tuple[str, str, dict]]:
    """``(case, entity, profile)`` for every crafted profile, in the order of ``CASES``.

    The ProfileId is the MD5 of ``case/entity/position`` (the position among all crafted profiles), so it is the
    same on every run and the same as the throw-away probe this script replaces had."""
    rows = []
    for case, people in CASES:
        for entity, fields in people:
            profile_id = hashlib.md5(f"{case}/{entity}/{len(rows)}".encode()).hexdigest()
            profile = {"ProfileId": profile_id, "PartyType": "INDIVIDUAL", "ProfileType": "PROFILE", **fields}
            rows.append((case, entity, {key: value for key, value in profile.items() if value is not None}))
    return rows


def phone_region(profile: dict) -> str:
    """The region a profile's phone numbers are read in for the check: its two-letter country, else US."""
    country = (profile.get("Address") or {}).get("Country", "US")
    country = {"United Kingdom": "GB"}.get(country, country)
    return country if len(country) == 2 else "US"


def invalid_phones(rows: Iterable[tuple[str, str, dict]]) -> list[tuple[str, str, str]]:
    """``(case, field, number)`` for every phone number that ``phonenumbers`` does not take as valid."""
    bad = []
    for case, _, profile in rows:
        for field in PHONE_FIELDS:
            if field in profile:
                try:
                    valid = phonenumbers.is_valid_number(phonenumbers.parse(profile[field], phone_region(profile)))
                except phonenumbers.NumberParseException:
                    valid = False
                if not valid:
                    bad.append((case, field, profile[field]))
    return bad


def write_probe(directory: Path, rows: list[tuple[str, str, dict]], background: int, seed: str) -> tuple[Path, Path]:
    """Write ``probe.jsonl`` (the generated profiles, then the crafted ones) and ``truth.csv`` (the crafted
    profiles' case and entity). Generated profiles are written as ``generate.py`` writes them and crafted ones as
    the old probe did, so the input is byte for byte the probe's."""
    probe, truth = directory / "probe.jsonl", directory / "truth.csv"
    with probe.open("wb") as handle:
        for profile, _ in generate(background, seed=seed):
            handle.write(orjson.dumps(profile) + b"\n")
        for _, _, profile in rows:
            handle.write(json.dumps(profile, ensure_ascii=False).encode() + b"\n")
    with truth.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["profile_id", "case", "entity"])
        writer.writerows((profile["ProfileId"], case, entity) for case, entity, profile in rows)
    return probe, truth


def read_truth(path: Path) -> list[tuple[str, str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [(row["profile_id"], row["case"], row["entity"]) for row in csv.DictReader(handle)]


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON Lines file, or of its shards (``path*``) when the job wrote it in parts."""
    files = [str(path)] if path.is_file() else sorted(f for f in glob.glob(glob.escape(str(path)) + "*")
                                                      if os.path.isfile(f))
    if not files:
        raise FileNotFoundError(f"no file at {path} (nor {path}*)")
    records = []
    for name in files:
        with open(name, "rb") as handle:
            records.extend(orjson.loads(line) for line in handle if line.strip())
    return records


class CaseStatus(NamedTuple):
    case: str
    status: str                 # "ok", "FALSE MERGE", "MISS" or "FALSE MERGE, MISS"
    groups: list[list[str]]     # the merges holding the case's profiles: "entity#n" labels, then "+k outside"
    reviews: list[str]          # what review.jsonl says about the case's profiles, one line each, sorted
    one_person: bool            # all the case's profiles have one entity
    outside: int                # the case's profiles in a merge with a profile from outside the case


def _name(pid: str, case: str, where: dict[str, tuple[str, str]]) -> str:
    """A profile as seen from ``case``: its label if it is of the case, ``case/label`` if of another case,
    ``outside`` if it is not a crafted profile."""
    if pid not in where:
        return "outside"
    return where[pid][1] if where[pid][0] == case else "/".join(where[pid])


def _review_lines(review: Iterable[dict], where: dict[str, tuple[str, str]]) -> dict[str, list[str]]:
    """``{case: [line, ...]}``: each review record that names a crafted profile, written once for every case
    it names."""
    lines = defaultdict(set)
    for record in review:
        kind = record.get("kind")
        if kind == "pair":
            named = [record["a"], record["b"]]
        elif kind == "split_off":
            named = [record["profile"]]
        elif kind == "held_cluster":
            named = list(record.get("members") or [])
        else:
            continue
        for case in dict.fromkeys(where[pid][0] for pid in named if pid in where):
            if kind == "pair":
                a, b = _name(record["a"], case, where), _name(record["b"], case, where)
                reasons = "".join(f" {reason};" for reason in record.get("reasons") or []).rstrip(";")
                lines[case].add(f"pair {a} ~ {b}: p={record.get('probability')}{reasons}")
            elif kind == "split_off":
                lines[case].add(f"split off {_name(record['profile'], case, where)} "
                                f"(best p={record.get('best_probability')}): {record.get('reason')}")
            else:
                ours = " ".join(_name(pid, case, where) for pid in named if pid in where and where[pid][0] == case)
                lines[case].add(f"held group of {record.get('size')} with {ours}: {record.get('reason')}")
    return {case: sorted(found) for case, found in lines.items()}


def case_statuses(plan: Iterable[dict], review: Iterable[dict],
                  truth: Iterable[tuple[str, str, str]]) -> list[CaseStatus]:
    """What became of each case, from the job's merge requests, its review records and the truth rows
    ``(profile_id, case, entity)`` of the crafted profiles (in the order the cases should be listed).

    A profile in no merge request is a group of its own. A case is a FALSE MERGE when one merge holds profiles of
    two of its entities, or one of its profiles and any profile from outside the case (every other profile is
    another person); a MISS when the profiles of one of its entities are not all in one merge."""
    merge_of: dict[str, str] = {}
    size: dict[str, int] = defaultdict(int)
    for request in plan:
        main = request["MainProfileId"]
        for pid in [main, *request["ProfileIdsToBeMerged"]]:
            if pid not in merge_of:
                merge_of[pid] = main
                size[main] += 1
    cases: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for pid, case, entity in truth:
        cases[case].append((pid, entity))
    where = {pid: (case, f"{entity}#{n}") for case, rows in cases.items() for n, (pid, entity) in enumerate(rows)}
    reviews = _review_lines(review, where)

    statuses = []
    for case, rows in cases.items():
        entity_of = dict(rows)
        mixed, outside, groups = False, 0, []
        for merge in dict.fromkeys(merge_of[pid] for pid, _ in rows if pid in merge_of):
            inside = [pid for pid, _ in rows if merge_of.get(pid) == merge]
            others = size[merge] - len(inside)
            mixed = mixed or others > 0 or len({entity_of[pid] for pid in inside}) > 1
            outside += len(inside) if others else 0
            groups.append([where[pid][1] for pid in inside] + ([f"+{others} outside"] if others else []))
        place = {pid: merge_of.get(pid, pid) for pid, _ in rows}
        apart = any(len({place[pid] for pid, e in rows if e == entity}) > 1 for entity in set(entity_of.values()))
        status = ", ".join(part for part, found in (("FALSE MERGE", mixed), ("MISS", apart)) if found) or "ok"
        statuses.append(CaseStatus(case, status, groups, reviews.get(case, []),
                                   len(set(entity_of.values())) == 1, outside))
    return statuses


def summary_line(statuses: list[CaseStatus]) -> str:
    different = [s for s in statuses if not s.one_person]
    one = [s for s in statuses if s.one_person]
    merged = sum("FALSE MERGE" in s.status for s in different)
    apart = sum("MISS" in s.status for s in one)
    return (f"groups of different people merged: {merged} of {len(different)}; "
            f"groups of one person left apart: {apart} of {len(one)}")


def report(statuses: list[CaseStatus]) -> list[str]:
    """The lines printed: one per case (reviews under those not ok), then the summary."""
    width = max(len(s.case) for s in statuses)
    lines = []
    for s in statuses:
        merges = " ".join("{" + ", ".join(group) + "}" for group in s.groups) or "none"
        lines.append(f"{s.case:<{width}}  {s.status:<17}  merged: {merges}")
        if s.status != "ok":
            lines.extend(f"    review: {line}" for line in s.reviews or ["(nothing in review.jsonl)"])
    with_outside = [s.case for s in statuses if s.outside]
    lines.append(f"groups merged with a profile from outside the group: {len(with_outside)}"
                 + (f" ({', '.join(with_outside)})" if with_outside else ""))
    lines.append(summary_line(statuses))
    return lines


def run_job(probe: Path, out: Path, runner: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pipeline", "--input", str(probe), "--output", str(out), "--runner", runner]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", help="directory for the input, truth and the job's output "
                                         "(default: a temporary directory, removed unless --keep)")
    parser.add_argument("--background", type=int, default=3000, help="generated profiles before the crafted ones")
    parser.add_argument("--seed", default="5", help="the generator's seed (default: 5)")
    parser.add_argument("--runner", default="FnApiRunner", help="Beam runner for the job (default: FnApiRunner)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.background < 0:
        parser.error("--background must be >= 0")
    if args.output and (Path(args.output) / "out").exists():
        parser.error(f"{Path(args.output) / 'out'} already exists; choose another --output")

    rows = probe_profiles()
    bad = invalid_phones(rows)
    if bad:
        print(f"phone numbers that phonenumbers takes as invalid: {bad}", file=sys.stderr)
        return 2
    directory = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="household-probe-"))
    directory.mkdir(parents=True, exist_ok=True)
    if args.output or args.keep:
        print(f"files in {directory}")
    try:
        probe, truth = write_probe(directory, rows, args.background, args.seed)
        print(f"{len(rows)} crafted profiles in {len(CASES)} groups after {args.background:,} generated ones "
              f"(seed {args.seed}); running the job ({args.runner})", flush=True)
        started = time.perf_counter()
        result = run_job(probe, directory / "out", args.runner)
        if result.returncode != 0:
            print(result.stderr[-3000:], file=sys.stderr)
            print(f"the job failed (exit status {result.returncode})", file=sys.stderr)
            return result.returncode
        print(f"the job took {time.perf_counter() - started:.0f} s", flush=True)
        statuses = case_statuses(read_jsonl(directory / "out" / "merge_plan.jsonl"),
                                 read_jsonl(directory / "out" / "review.jsonl"), read_truth(truth))
        print("\n".join(report(statuses)))
    finally:
        if not (args.output or args.keep):
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
