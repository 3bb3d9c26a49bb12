"""The matching model as plain, serialisable data.

A *comparison* looks at one aspect of two profiles (first name, birth date, ...)
and puts the pair into the first of its ordered *levels* whose condition holds
("null" when either side is missing, "exact", "fuzzy at a threshold", ..., "else").
Each level carries ``m`` (how often true duplicates land there) and ``u`` (how
often two random profiles do); its Fellegi-Sunter weight is ``log2(m / u)`` and a
pair's match weight is the prior weight plus the sum of its levels' weights, so
every score explains itself field by field.

A comparison may name a ``term_frequency`` field: on its exact level, a value
many profiles share ("smith") then weighs less than the average exact match,
``log2(m / frequency)``; a rare value never weighs more than the average.
The spec may add ``given: {comparison, joint_field}``: when the pair is on the
term-frequency levels of both comparisons, their summed weight is capped at
``log2(m1 * m2 / frequency of the joint value)`` (for a joint value at least
``min_profiles``, default 25, profiles share). First and last names are not
independent ("jean" and "martin" are both common in France, so "jean martin" is
far more common than the product of the two shares): the full name's own
frequency says how much agreeing on both is worth.

*Blocking rules* name the feature values two profiles must share to be compared
at all. *Guards* are level patterns that may never merge automatically whatever
the score (for example: first names and birth dates both clearly differ, which
is what family members sharing a phone and an address look like).

``m``, ``u`` and the prior are estimated from the data by ``transforms.estimate``
(no labels); the initial ``m`` values below only seed expectation-maximisation.
A model written by one run (``model.json``) can be passed back with ``--model``.
"""
from __future__ import annotations

import copy
import math

# Raised when comparisons, levels or guards change what a model file means: a model.json of an earlier
# version lacks later guards (it would merge what this version holds), so it is refused, not reused.
MODEL_VERSION = 3

# A joint value ("john|smith") counts as common only when at least this many profiles
# share it: below that, one person's own duplicates could be all of them.
JOINT_MIN_PROFILES = 25

# The names the normaliser also keeps as written (the ``written`` feature, in this order) when
# they are in a script whose transliteration loses what tells names apart (Chinese characters,
# Arabic, Hangul, ...: transforms.normalize.written_name). A comparison with "as_written" names one
# of them: two profiles that both have it written, differently, are at its "else" level whatever
# the transliterations say (伟 / 薇 both read "wei"), unless one's is the other's other name
# (first and last swapped).
WRITTEN_NAMES = ("first", "middle", "last")

# Each level: label, a condition (kind + arguments) and an initial m for EM.
# Condition kinds (see transforms.compare): null, exact, overlap, member, similarity,
# member_typo, other_name (two names the nickname table knows, not related), compatible (one
# side's values all among the other's, or a side has none), conflicting (its opposite), begins (one
# value an initial or the first words of the other), neither (empty on both sides), cross_exact,
# cross_similarity, same_letters, date_swap, date_within, other_given_names
# (the words after the first agree, or one side has none), all, else.
# A similarity level with "same_digits" also needs the two values' digits (in order) to agree, and one with
# "same_last" their last characters (the place where numbers issued one after another differ).
DEFAULT_COMPARISONS = [
    {
        "name": "first_name",
        "description": "First name, folded; nickname groups from the nicknames table",
        "term_frequency": {"field": "first", "levels": ["exact"],
                           "given": {"comparison": "last_name", "joint_field": "name_pair"}},
        "as_written": "first",
        "levels": [
            {"label": "null", "kind": "null", "fields": ["first"]},
            {"label": "exact", "kind": "exact", "field": "first", "m": 0.75},
            {"label": "swapped with last name", "kind": "cross_exact", "fields": ["first", "last"], "m": 0.01},
            # Nicknames and near matches read the first word; two given names on both sides must
            # also agree on the rest (Van Anh / Van Binh, Jean-Pierre / Jean-Luc are two people).
            {"label": "nickname", "kind": "all", "m": 0.05, "of": [
                {"kind": "member", "fields": ["first", "first_variants"]},
                {"kind": "other_given_names", "field": "first"},
            ]},
            # Two names of their own, alike (Mark / Mary, Daniel / Danielle): perhaps a typo that
            # made another name, perhaps two people; the nickname table says which words are names.
            {"label": "another name alike", "kind": "all", "m": 0.01, "of": [
                {"kind": "other_name", "field": "first_variants"},
                {"kind": "similarity", "field": "first", "scorer": "jaro_winkler", "threshold": 0.80},
            ]},
            # Jaro-Winkler rates a shared beginning highly (Michael / Michelle 0.92): a near
            # match is also at most two edits apart.
            {"label": "jaro-winkler >= 0.92", "kind": "all", "m": 0.1, "of": [
                {"kind": "similarity", "field": "first", "scorer": "jaro_winkler", "threshold": 0.92},
                {"kind": "similarity", "field": "first", "scorer": "damerau_levenshtein_distance", "threshold": 2},
                {"kind": "other_given_names", "field": "first"},
            ]},
            # a typo in a short name (Ryan / Rgan) scores below 0.92; apart from the looser band
            # below, where unrelated names of one household land too (Mary / Mandy)
            {"label": "one typo", "kind": "all", "m": 0.03, "of": [
                {"kind": "similarity", "field": "first", "scorer": "damerau_levenshtein_distance", "threshold": 1},
                {"kind": "other_given_names", "field": "first"},
            ]},
            {"label": "jaro-winkler >= 0.80", "kind": "all", "m": 0.05, "of": [
                {"kind": "similarity", "field": "first", "scorer": "jaro_winkler", "threshold": 0.80},
                {"kind": "other_given_names", "field": "first"},
            ]},
            {"label": "nickname with a typo", "kind": "all", "m": 0.02, "of": [
                {"kind": "member_typo", "fields": ["first", "first_variants"]},
                {"kind": "other_given_names", "field": "first"},
            ]},
            {"label": "same letters reordered", "kind": "all", "m": 0.01, "of": [
                {"kind": "same_letters", "field": "first"},
                {"kind": "similarity", "field": "first", "scorer": "damerau_levenshtein_distance", "threshold": 2},
            ]},
            {"label": "like the other's last name", "kind": "cross_similarity", "fields": ["first", "last"], "scorer": "jaro_winkler", "threshold": 0.88, "m": 0.01},
            # Jaro-Winkler is harsh on short names: "sma webb" against "webb sam" is one transposition
            {"label": "swapped with one typo", "kind": "cross_similarity", "fields": ["first", "last"], "scorer": "damerau_levenshtein_distance", "threshold": 1, "m": 0.005},
            {"label": "else", "kind": "else", "m": 0.04},
        ],
    },
    {
        "name": "middle_name",
        "description": "Middle name, folded; an initial agrees with the names it begins",
        "as_written": "middle",
        "levels": [
            {"label": "null", "kind": "null", "fields": ["middle"]},
            {"label": "exact", "kind": "exact", "field": "middle", "m": 0.7},
            {"label": "initial or first word", "kind": "begins", "field": "middle", "m": 0.2},
            {"label": "jaro-winkler >= 0.88", "kind": "similarity", "field": "middle", "scorer": "jaro_winkler",
             "threshold": 0.88, "m": 0.07},
            {"label": "else", "kind": "else", "m": 0.03},
        ],
    },
    {
        "name": "last_name",
        "description": "Last name, folded",
        "term_frequency": {"field": "last", "levels": ["exact"]},
        "as_written": "last",
        "levels": [
            {"label": "null", "kind": "null", "fields": ["last"]},
            {"label": "exact", "kind": "exact", "field": "last", "m": 0.8},
            {"label": "swapped with first name", "kind": "cross_exact", "fields": ["last", "first"], "m": 0.01},
            {"label": "jaro-winkler >= 0.92", "kind": "similarity", "field": "last", "scorer": "jaro_winkler", "threshold": 0.92, "m": 0.1},
            {"label": "jaro-winkler >= 0.80", "kind": "similarity", "field": "last", "scorer": "jaro_winkler", "threshold": 0.80, "m": 0.05},
            {"label": "like the other's first name", "kind": "cross_similarity", "fields": ["last", "first"], "scorer": "jaro_winkler", "threshold": 0.88, "m": 0.01},
            {"label": "swapped with one typo", "kind": "cross_similarity", "fields": ["last", "first"], "scorer": "damerau_levenshtein_distance", "threshold": 1, "m": 0.005},
            {"label": "else", "kind": "else", "m": 0.05},
        ],
    },
    {
        "name": "generation",
        "description": "A generational suffix (Jr, Sr, III) after a name: one side's alone, or two "
                       "different ones, tell a father from a son of the same name",
        "levels": [
            {"label": "null", "kind": "null", "fields": ["first", "last"]},
            {"label": "neither has one", "kind": "neither", "fields": ["suffix"], "m": 0.98},
            {"label": "exact", "kind": "exact", "field": "suffix", "m": 0.015},
            {"label": "else", "kind": "else", "m": 0.005},
        ],
    },
    {
        "name": "birth_date",
        "description": "Birth date read into ISO form",
        # a date many profiles give (a form's default, the first of January for an unknown day)
        # weighs less than a date a few share
        # (shared by 25 profiles at least: one person's own duplicates do not make their date common)
        "term_frequency": {"field": "dob", "levels": ["exact"], "min_profiles": 25},
        "levels": [
            {"label": "null", "kind": "null", "fields": ["dob"]},
            {"label": "exact", "kind": "exact", "field": "dob", "m": 0.8},
            {"label": "one typo", "kind": "similarity", "field": "dob", "scorer": "damerau_levenshtein_distance", "threshold": 1, "m": 0.08},
            {"label": "day and month swapped", "kind": "date_swap", "field": "dob", "m": 0.02},
            {"label": "within a month", "kind": "date_within", "field": "dob", "days": 31, "m": 0.03},
            {"label": "within a year", "kind": "date_within", "field": "dob", "days": 366, "m": 0.03},
            {"label": "within 15 years", "kind": "date_within", "field": "dob", "days": 5479, "m": 0.02},
            {"label": "else", "kind": "else", "m": 0.04},
        ],
    },
    {
        "name": "email",
        "description": "Email matching keys (case, Gmail dots and +tags folded)",
        "term_frequency": {"field": "emails", "levels": ["same address"]},
        "levels": [
            {"label": "null", "kind": "null", "fields": ["emails"]},
            # a personal address both have, then one only a household's or an office's look
            # ("thesmiths@", "info@") shares: weaker than a personal one
            {"label": "same address", "kind": "overlap", "field": "personal_emails", "m": 0.7},
            {"label": "same household address", "kind": "overlap", "field": "household_emails", "m": 0.02},
            {"label": "levenshtein >= 0.88", "kind": "similarity", "field": "emails", "scorer": "levenshtein", "threshold": 0.88,
             "same_digits": True, "m": 0.05},
            {"label": "same user name", "kind": "overlap", "field": "email_users_specific", "m": 0.1},
            {"label": "else", "kind": "else", "m": 0.1},
        ],
    },
    {
        "name": "phone",
        "description": "Any phone in E.164 form",
        "term_frequency": {"field": "phones", "levels": ["same number", "same fixed line"]},
        "levels": [
            {"label": "null", "kind": "null", "fields": ["phones"]},
            # the same number, not only a fixed line (a household's or an office's)
            {"label": "same number", "kind": "overlap", "field": "phones_personal", "m": 0.7},
            # a number both have that is not a mobile on both sides: a household's or an office's line
            # (one profile may have entered it as a home number, the other as its phone number)
            {"label": "same fixed line", "kind": "overlap", "field": "phones", "m": 0.1},
            {"label": "else", "kind": "else", "m": 0.2},
        ],
    },
    {
        "name": "location",
        "description": "Postcode, street line and city of any address",
        # a postcode alone: a large town's weighs less than a village's
        "term_frequency": {"field": "postcodes", "levels": ["postcode"]},
        "levels": [
            {"label": "null", "kind": "null", "fields": ["postcodes", "address", "city"]},
            # a street line agrees only when it names no other flat or suite (Apt 5C / Apt 11G of one
            # building are two homes: see "same street, another flat")
            {"label": "postcode and street", "kind": "all", "m": 0.6, "of": [
                {"kind": "overlap", "field": "postcodes"},
                {"kind": "similarity", "field": "address", "scorer": "token_set_ratio", "threshold": 0.85},
                {"kind": "compatible", "field": "units"},
            ]},
            {"label": "same street, another flat", "kind": "all", "m": 0.01, "of": [
                {"kind": "conflicting", "field": "units"},
                {"kind": "similarity", "field": "address", "scorer": "token_set_ratio", "threshold": 0.85},
            ]},
            {"label": "postcode", "kind": "overlap", "field": "postcodes", "m": 0.1},
            {"label": "street and city", "kind": "all", "m": 0.05, "of": [
                {"kind": "similarity", "field": "address", "scorer": "token_set_ratio", "threshold": 0.85},
                {"kind": "exact", "field": "city"},
            ]},
            {"label": "city", "kind": "exact", "field": "city", "m": 0.1},
            {"label": "city with a typo", "kind": "all", "m": 0.03, "of": [
                {"kind": "similarity", "field": "city", "scorer": "jaro_winkler", "threshold": 0.9},
                {"kind": "similarity", "field": "city", "scorer": "damerau_levenshtein_distance", "threshold": 2},
            ]},
            {"label": "else", "kind": "else", "m": 0.15},
        ],
    },
    {
        "name": "gender",
        "description": "Gender when MALE or FEMALE",
        "levels": [
            {"label": "null", "kind": "null", "fields": ["gender"]},
            {"label": "exact", "kind": "exact", "field": "gender", "m": 0.95},
            {"label": "else", "kind": "else", "m": 0.05},
        ],
    },
    {
        "name": "business_name",
        "description": "Business name, folded",
        "levels": [
            {"label": "null", "kind": "null", "fields": ["business"]},
            {"label": "exact", "kind": "exact", "field": "business", "m": 0.8},
            {"label": "token-set >= 0.90", "kind": "similarity", "field": "business", "scorer": "token_set_ratio", "threshold": 0.9, "m": 0.1},
            {"label": "else", "kind": "else", "m": 0.1},
        ],
    },
    {
        "name": "account_number",
        "description": "AccountNumber",
        "levels": [
            {"label": "null", "kind": "null", "fields": ["account"]},
            {"label": "exact", "kind": "exact", "field": "account", "m": 0.9},
            {"label": "one typo", "kind": "similarity", "field": "account", "scorer": "damerau_levenshtein_distance", "threshold": 1,
             "same_last": True, "m": 0.03},
            {"label": "else", "kind": "else", "m": 0.07},
        ],
    },
]

# Blocking rules: profiles are compared only when they share every named feature
# value. A multi-valued feature (phones, emails) gives one key per value.
# Rules on identifying values (a phone, an email, a street line) make blocks of a few
# profiles whatever the size of the data. Rules on names, places and birth years make
# blocks that grow with it ("john" in "london"): every member paired with every other
# would make the candidate pairs grow with the square of the input. Those rules carry a
# ``window``: a block larger than window + 1 pairs each member only with its ``window``
# neighbours in a sort on last name, first name, birth date, postcode, email and phone
# (transforms.block.window_order), so a rule costs at most ``window`` pairs per profile,
# and it may grow to its own ``max_block_size`` before it is capped.
#
# Rules on a full name (first + last) make blocks of namesakes, where duplicates sit a few
# places apart in that sort: they keep a window of 4. Rules on one name or a birth date with a
# broad value (a city, a birth year; a birth date alone) make blocks of unrelated people once
# the data is large ("john" born in 1980): there a duplicate is, if anywhere, the next profile
# in the sort, and a wider window mostly pairs strangers. They pair everyone in a block of up
# to ``all_pairs_up_to`` members (the blocks of a small domain, where these rules matter most)
# and only direct neighbours in a larger one. On a million generated profiles these five
# rules with a window of 4 added 7.4 M of the 10.8 M candidate pairs; like this they add 2.2 M,
# and the share of true pairs the blocks reach (directly or through other true pairs) goes
# from 0.9479 to 0.9470 (benchmarks/blocking_yield.py).
WINDOW = 4
WINDOWED_BLOCK_LIMIT = 1000
NAMESAKES = {"window": WINDOW, "max_block_size": WINDOWED_BLOCK_LIMIT}
BROAD = {"window": 1, "all_pairs_up_to": 8, "max_block_size": WINDOWED_BLOCK_LIMIT}
DEFAULT_BLOCKING_RULES = [
    {"name": "phone", "fields": ["phones"]},
    {"name": "email", "fields": ["emails"]},
    {"name": "email_user", "fields": ["email_users"]},
    {"name": "birth_date+last_name_phonetic", "fields": ["dob", "last_phonetic"]},
    {"name": "first_name+last_name_phonetic", "fields": ["first", "last_phonetic"], **NAMESAKES},
    {"name": "postcode+last_name_phonetic", "fields": ["postcodes", "last_phonetic"]},
    # A last-name typo that changes its phonetic key leaves a duplicate without contact details
    # nothing else to share; a street line with its postcode is a household's (a few profiles).
    {"name": "postcode+street+first_initial", "fields": ["postcodes", "address", "first_initial"]},
    {"name": "birth_date+city", "fields": ["dob", "city"]},
    # Birth date alone finds duplicates whose names and contacts are all mistyped;
    # its blocks grow with the data (about n / 30,000).
    {"name": "birth_date", "fields": ["dob"], **BROAD},
    {"name": "birth_year+last_name_phonetic", "fields": ["dob_year", "last_phonetic"], **BROAD},
    {"name": "birth_year+first_name", "fields": ["dob_year", "first"], **BROAD},
    {"name": "first_and_last_name_in_any_order", "fields": ["name_pair"], **NAMESAKES},
    {"name": "last_name_phonetic+city", "fields": ["last_phonetic", "city"], **BROAD},
    {"name": "first_name+city", "fields": ["first", "city"], **BROAD},
    {"name": "account_number", "fields": ["account"]},
]

# What one person's profiles share and a household's rarely do: a kept member that matches a
# profile at --match_threshold on one of these (see "member_settles" below) vouches for it.
# Not the account number: in many CRMs a household shares one (benchmarks/shared_identifier.py).
PERSONAL_AGREEMENT = {"birth_date": ["exact", "one typo", "day and month swapped"], "email": ["same address"]}

# Levels at which nothing personal agrees: no birth date, or one more than a typo apart (a month or
# more); no email but a household's or an office's (or the same user name at another domain); no
# phone but a fixed line; no account number. A guard on one disagreement (middle names, a
# generational suffix) holds only with these: a shared birth date, email or mobile outweighs it.
NOTHING_PERSONAL = {"birth_date": ["null", "within a month", "within a year", "within 15 years", "else"],
                    "email": ["null", "same household address", "same user name", "else"],
                    "phone": ["null", "same fixed line", "else"], "account_number": ["null", "else"]}

# A pair whose levels fit a guard's "when" (every comparison listed at one of the
# listed levels) is never merged automatically, unless it also fits its "unless";
# it goes to review instead. Between two members of a cluster (neither the main),
# a guard still blocks when the main has no value for one of its "main_settles"
# comparisons (default: every comparison of "when"): a main without a birth date
# cannot tell that two members born a generation apart are one person. A guard
# about missing evidence rather than disagreement lists none: each member already
# matched the main, guards included.
#
# A guard with "member_settles" may also be settled between a profile and the main itself,
# when the profile lacks what "profile_lacks" names (optional) and the main has it, and the
# two have nothing to compare on the "by" comparisons (the main has no birth date and no
# email, say): a kept member that matches the profile at --match_threshold with no guard
# between them, and agrees with it at one of the "by" levels, supplies the evidence the main
# lacks (transforms.cluster).
#
# Estimation counts the pairs a guard holds as non-matches (transforms.estimate), so that
# households do not teach it that duplicates disagree; a guard about too little evidence
# rather than a disagreement may say "in_estimation": false to stay out of it.
DEFAULT_GUARDS = [
    {
        "name": "different first names",
        "description": "Both first names present and unrelated (not similar, not nicknames, not the "
                       "other's last name), unless the account number (or one typo of it) and the birth date agree: "
                       "family members and coworkers share contact details but not first names.",
        "when": {"first_name": ["else"]},
        "unless": {"account_number": ["exact", "one typo"], "birth_date": ["exact", "one typo"]},
    },
    {
        "name": "birth dates a generation apart",
        "description": "Birth dates a generation apart (more than 15 years, and not a one-character typo): "
                       "parents and children with the same name share addresses and phones; unless the "
                       "account number and both names agree (perhaps entered in each other's fields).",
        "when": {"birth_date": ["else"]},
        "unless": {"account_number": ["exact", "one typo"],
                   "first_name": ["exact", "nickname", "jaro-winkler >= 0.92", "swapped with last name",
                                  "like the other's last name", "swapped with one typo"],
                   "last_name": ["exact", "jaro-winkler >= 0.92", "swapped with first name",
                                 "like the other's first name", "swapped with one typo"]},
    },
    {
        "name": "namesakes: different phones",
        "description": "Both have phones and none is shared, and nothing else that identifies one person "
                       "agrees (email, birth date, street address, account number; a postcode, or another flat "
                       "of the same building, is not one): namesakes look like this. "
                       "Between two members, a main with a phone and a first name settles it when both members "
                       "have first names too (each matched the main on its own phone or other evidence); a member "
                       "without a first name may be another member of the household sharing a landline.",
        "when": {"phone": ["else"], "email": ["null", "same household address", "else"],
                 "birth_date": ["null", "within a year", "within 15 years", "else"],
                 "location": ["null", "same street, another flat", "postcode", "city", "else"], "account_number": ["null", "else"]},
        "main_settles": ["phone", "first_name"],
    },
    {
        "name": "nothing but names",
        "description": "Names agree (perhaps the city too, or the street in another flat) but there is no "
                       "birth date to compare (or only one with day and month swapped: two dates as often as one "
                       "written two ways) and no phone, email, street address or account number in common: "
                       "namesakes look like this. "
                       "It says the pair has too little evidence, not that the two differ: between two members "
                       "who each match the main on something besides names, the main settles it; between a profile "
                       "and the main, a member that shares its birth date or email does.",
        "when": {"birth_date": ["null", "day and month swapped"], "phone": ["null", "else"], "email": ["null", "else"],
                 "location": ["null", "same street, another flat", "city", "else"], "account_number": ["null", "else"]},
        "main_settles": [],
        "member_settles": {"by": PERSONAL_AGREEMENT},
    },
    {
        "name": "a family name and a household",
        "description": "One first name is missing, another name alike (Mary / Mandy, Daniel / Danielle: two "
                       "names of their own) or only loosely like the other (not the same, a nickname or one "
                       "typo), the street address agrees and nothing personal does (no birth date within a "
                       "month, no email but a household's or an office's, no phone but a fixed line, no account "
                       "number): a last name with an address "
                       "(and perhaps a landline) is what the members of a household share. When the profile has no "
                       "first name, the main has one and no birth date or email to compare, a member that shares "
                       "the profile's birth date or email settles it.",
        "when": {"first_name": ["null", "another name alike", "jaro-winkler >= 0.80"],
                 "location": ["postcode and street", "postcode", "street and city"],
                 "birth_date": ["null", "within a year", "within 15 years", "else"],
                 "email": ["null", "same household address", "else"], "phone": ["null", "same fixed line", "else"],
                 "account_number": ["null", "else"]},
        "member_settles": {"profile_lacks": ["first_name"], "by": PERSONAL_AGREEMENT},
    },
    {
        "name": "names alike, different birth dates, one household",
        "description": "One first name a nickname of the other (Sam / Samantha, Alex / Alexandra: a nickname "
                       "may stand for names of two people) or only alike (Minh / Linh, Jan / Jana, Samir / Samira, "
                       "Rajesh / Rakesh: a typo would be one, but so are many siblings' and couples' names), birth "
                       "dates that differ by more than a typo, the "
                       "address agrees and nothing personal does (no email but a household's or an office's, no "
                       "phone but a fixed line, no account number): a couple, siblings, or a parent and a child, "
                       "sharing a home.",
        "when": {"first_name": ["nickname", "nickname with a typo", "another name alike", "jaro-winkler >= 0.92",
                                "one typo", "jaro-winkler >= 0.80", "same letters reordered"],
                 "birth_date": ["within a year", "within 15 years", "else"],
                 "location": ["postcode and street", "postcode", "street and city"],
                 "email": ["null", "same household address", "else"],
                 "phone": ["null", "same fixed line", "else"], "account_number": ["null", "else"]},
    },
    {
        "name": "two businesses",
        "description": "Neither profile names a person, and their business names differ: two companies with one "
                       "owner, a phone, an email or an address in common (a shared building, a shared accountant) "
                       "are two companies.",
        "when": {"business_name": ["else"], "first_name": ["null"], "last_name": ["null"]},
    },
    {
        "name": "a nickname and an office",
        "description": "One first name a nickname of the other (Chris / Christine), the business name agrees "
                       "and nothing personal does (no birth date within a month, no email but an office's, no "
                       "phone but a fixed line): coworkers sharing a switchboard and info@.",
        "when": {"first_name": ["nickname", "nickname with a typo"],
                 "business_name": ["exact", "token-set >= 0.90"],
                 "birth_date": ["null", "within a year", "within 15 years", "else"],
                 "email": ["null", "same household address", "else"],
                 "phone": ["null", "same fixed line", "else"], "account_number": ["null", "else"]},
    },
    {
        "name": "a family name and a fixed line",
        "description": "One profile has no first name, and all the two share is a last name and a fixed line "
                       "(no address, birth date, email or account number in common): a household's landline. When the "
                       "main has one and no birth date or email to compare, a member that shares the profile's birth "
                       "date or email settles it.",
        "when": {"first_name": ["null"], "phone": ["same fixed line"], "location": ["null", "city", "else"],
                 "birth_date": ["null", "within a year", "within 15 years", "else"],
                 "email": ["null", "same household address", "else"], "account_number": ["null", "else"]},
        "member_settles": {"profile_lacks": ["first_name"], "by": PERSONAL_AGREEMENT},
    },
    {
        "name": "no names and nothing personal",
        "description": "One profile has no name at all (no first and no last name), the other has no first or no "
                       "last name to compare, and nothing personal agrees (no birth date within a month, no email "
                       "but a household's or an office's, no phone but a fixed line), whatever else does: an "
                       "address, a landline and an account number are what a household shares, and without "
                       "names nothing tells its members apart (profiles made from a call or a chat often have "
                       "nothing but a number).",
        "when": {"first_name": ["null"], "last_name": ["null"], "generation": ["null"],
                 "birth_date": NOTHING_PERSONAL["birth_date"], "email": ["null", "same household address", "else"],
                 "phone": NOTHING_PERSONAL["phone"]},
        # one business's name at one street address is that business, whose number is its office's line
        # (branches of a chain have their own addresses)
        "unless": {"business_name": ["exact"], "location": ["postcode and street"]},
        # too little evidence, not a disagreement: between two members that each match the main, the
        # main settles it, and such pairs are not taken for non-matches in estimation
        "main_settles": [],
        "in_estimation": False,
    },
    {
        "name": "different middle names",
        "description": "Both middle names present and unrelated (not alike, not an initial of the other: "
                       "Michael James / Michael Patrick) and nothing personal agrees (no birth date, or one a month "
                       "or more apart; no email but a household's or an office's; no phone but a fixed line; no "
                       "account number): a father and a son of one name, or two namesakes.",
        "when": {"middle_name": ["else"], **NOTHING_PERSONAL},
    },
    {
        "name": "different generations",
        "description": "One name has a generational suffix the other lacks or has another one (Robert "
                       "Johnson / Robert Johnson Jr.) and nothing personal agrees (as for middle names): "
                       "a father and a son of one name.",
        "when": {"generation": ["else"], **NOTHING_PERSONAL},
    },
    {
        "name": "different genders",
        "description": "One profile MALE, the other FEMALE.",
        "when": {"gender": ["else"]},
    },
]


def default_model() -> dict:
    """A fresh copy of the default model, with no estimated parameters yet."""
    return {
        "version": MODEL_VERSION,
        "comparisons": copy.deepcopy(DEFAULT_COMPARISONS),
        "blocking_rules": copy.deepcopy(DEFAULT_BLOCKING_RULES),
        "guards": copy.deepcopy(DEFAULT_GUARDS),
        "prior": None,
    }


def level_weight(level: dict) -> float:
    """log2(m/u) of one level; 0 for a null level (no evidence either way)."""
    if level["kind"] == "null":
        return 0.0
    return math.log2(level["m"] / level["u"])


def weight_tables(model: dict) -> list[list[float]]:
    """Per comparison, the weight of each level (index = level number)."""
    return [[level_weight(level) for level in comparison["levels"]] for comparison in model["comparisons"]]


def prior_weight(model: dict) -> float:
    prior = model["prior"]
    return math.log2(prior / (1.0 - prior))


def probability(weight: float) -> float:
    """Match probability from a match weight (log2 odds)."""
    if weight > 60:
        return 1.0
    if weight < -60:
        return 0.0
    return 1.0 / (1.0 + 2.0 ** (-weight))


def term_frequency_fields(model: dict) -> dict[str, int]:
    """The features whose value frequencies the model's term-frequency specs read, each with the
    fewest profiles that must share a value for it to count (``min_profiles``, default 2, and
    ``given.min_profiles`` for a joint field, default 25: one person's own duplicates should not make
    a full name, or a birth date, look common)."""
    fields = {}
    for comparison in model["comparisons"]:
        spec = comparison.get("term_frequency")
        if spec:
            fields[spec["field"]] = max(fields.get(spec["field"], 2), int(spec.get("min_profiles", 2)))
            given = spec.get("given")
            if given:
                fields[given["joint_field"]] = max(fields.get(given["joint_field"], 2),
                                                   int(given.get("min_profiles", JOINT_MIN_PROFILES)))
    return fields


def validate_model(model: dict, fitted: bool = True) -> None:
    """Raise ValueError when a model (e.g. from --model) is not usable.

    ``fitted=False`` checks only the structure of a specification whose m and u
    are still to be estimated.
    """
    if not isinstance(model, dict) or "comparisons" not in model:
        raise ValueError("a model must be an object with 'comparisons'")
    names = set()
    for comparison in model["comparisons"]:
        names.add(comparison["name"])
        levels = comparison.get("levels") or []
        if not levels or levels[0]["kind"] != "null" or levels[-1]["kind"] != "else":
            raise ValueError(f"comparison {comparison['name']}: levels must start with null and end with else")
        for level in levels[1:] if fitted else []:
            for key in ("m", "u"):
                value = level.get(key)
                if not isinstance(value, (int, float)) or not 0 < value <= 1:
                    raise ValueError(f"comparison {comparison['name']} level {level['label']}: {key} must be in (0, 1]")
        if comparison.get("as_written", WRITTEN_NAMES[0]) not in WRITTEN_NAMES:
            raise ValueError(f"comparison {comparison['name']}: as_written must be one of {', '.join(WRITTEN_NAMES)}")
    by_name = {c["name"]: c for c in model["comparisons"]}
    for comparison in model["comparisons"]:
        spec = comparison.get("term_frequency")
        if not spec:
            continue
        labels = {level["label"] for level in comparison["levels"]}
        if not isinstance(spec.get("field"), str) or not set(spec.get("levels") or []) <= labels:
            raise ValueError(f"comparison {comparison['name']}: term_frequency needs a field and levels it has")
        least = spec.get("min_profiles", 2)
        if not isinstance(least, int) or isinstance(least, bool) or least < 2:
            raise ValueError(f"comparison {comparison['name']}: term_frequency.min_profiles must be a whole number >= 2")
        given = spec.get("given")
        if given is not None:
            other = by_name.get(given.get("comparison"))
            if (other is None or not (other.get("term_frequency") or {}).get("levels")
                    or not isinstance(given.get("joint_field"), str)):
                raise ValueError(f"comparison {comparison['name']}: term_frequency.given needs a comparison with "
                                 "its own term_frequency and a joint_field")
    if not model.get("blocking_rules"):
        raise ValueError("a model needs at least one blocking rule")
    for rule in model["blocking_rules"]:
        if not isinstance(rule, dict) or not isinstance(rule.get("name"), str):
            raise ValueError("every blocking rule must be an object with a name")
        fields = rule.get("fields")
        if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
            raise ValueError(f"blocking rule {rule['name']}: fields must be a list of feature names")
        for setting in ("window", "all_pairs_up_to", "max_block_size"):
            value = rule.get(setting)
            if setting in rule and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"blocking rule {rule.get('name')}: {setting} must be a whole number of at least 1")
    prior = model.get("prior")
    if fitted and (not isinstance(prior, (int, float)) or not 0 < prior < 1):
        raise ValueError("model prior must be a probability in (0, 1)")
    version = model.get("version", MODEL_VERSION)
    if version != MODEL_VERSION:
        raise ValueError(f"model version {version!r}: this job reads version {MODEL_VERSION} (an earlier version's "
                         "comparisons and guards differ: without this version's guards it may merge households "
                         "this one holds). Fit a new model (run without --model), or set \"version\": "
                         f"{MODEL_VERSION} in the file to use it as it is")
    if len(names) != len(model["comparisons"]):
        seen = [c["name"] for c in model["comparisons"]]
        raise ValueError(f"comparisons named twice: {sorted({n for n in seen if seen.count(n) > 1})}")
    labels_of = {c["name"]: {level["label"] for level in c["levels"]} for c in model["comparisons"]}
    for guard in model.get("guards", []):
        settles = guard.get("member_settles") or {}
        unknown = (set(guard["when"]) | set(guard.get("unless", {})) | set(guard.get("main_settles", []))
                   | set(settles.get("by", {})) | set(settles.get("profile_lacks", []))) - names
        if unknown:
            raise ValueError(f"guard {guard['name']} names unknown comparisons {sorted(unknown)}")
        for conditions in (guard["when"], guard.get("unless", {}), settles.get("by", {})):
            for comparison, labels in conditions.items():
                missing = sorted(set(labels) - labels_of[comparison])
                if missing:
                    raise ValueError(f"guard {guard['name']}: comparison {comparison} has no levels {missing}")


def check_rule_features(model: dict) -> None:
    """Raise ValueError when a blocking rule or a comparison names a feature that normalising does not
    make (the rule would make no key, silently). The functions here work on any feature dicts; the job's
    features are ``transforms.normalize.profile_features``'."""
    from transforms.normalize import profile_features  # noqa: PLC0415  (normalising does not need the model)

    known = frozenset(profile_features({"ProfileId": "0" * 32}))
    for rule in model["blocking_rules"]:
        unknown = sorted(set(rule["fields"]) - known)
        if unknown:
            raise ValueError(f"blocking rule {rule['name']}: unknown features {unknown} "
                             f"(features: {', '.join(sorted(known))})")
    # a comparison on a feature normalising does not make fails when the first pair is compared, and a
    # term frequency of one silently never lowers a weight
    from transforms.estimate import comparison_fields  # noqa: PLC0415  (estimation reads this module)

    for comparison in model["comparisons"]:
        spec = comparison.get("term_frequency") or {}
        read = comparison_fields(comparison, raw=True) | {spec.get("field")} | {(spec.get("given") or {}).get("joint_field")}
        unknown = sorted(set(read) - known - {None})
        if unknown:
            raise ValueError(f"comparison {comparison['name']}: unknown features {unknown} "
                             f"(features: {', '.join(sorted(known))})")


def _fits(conditions: dict, pattern) -> bool:
    return all(int(pattern[column]) in levels for column, levels in conditions.items())


def guard_hits(compiled_guards, pattern) -> list[str]:
    """Names of the compiled guards ``[(name, when, unless)]`` that a pattern trips.

    ``when`` and ``unless`` map a comparison column to a set of level indices.
    """
    return [
        name for name, when, unless in compiled_guards
        if _fits(when, pattern) and not (unless and _fits(unless, pattern))
    ]
