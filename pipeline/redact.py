"""Masking of personal data for reports shared beyond the data owners (``--redact``).

Each mask keeps just enough to compare two values by eye without revealing them:

* emails keep the first character and the domain: ``j***@gmail.com``;
* phones keep the country code (when the number has one) and the last four digits:
  ``+44 **** **1346``;
* birth dates keep the year: ``1980-**-**``;
* street lines (``Address1`` .. ``Address4``, or an address written as one string) are replaced
  entirely: ``***``.

:class:`Redactor` applies these by field name, and to free text (attribute values,
raw rejected lines, blocking keys, reasons) by pattern: anything that looks like
an email, a date or a phone number.
"""
from __future__ import annotations

import json
import re

import phonenumbers

EMAIL_FIELDS = frozenset({"EmailAddress", "PersonalEmailAddress", "BusinessEmailAddress"})
PHONE_FIELDS = frozenset({"PhoneNumber", "MobilePhoneNumber", "HomePhoneNumber", "BusinessPhoneNumber"})
DATE_FIELDS = frozenset({"BirthDate"})
STREET_FIELDS = frozenset({"Address1", "Address2", "Address3", "Address4"})

STREET_MASK = "***"
_EXTENSION = re.compile(r"(?i)\s*(?:x|ext\.?|extension|#)\s*\d+\s*$")
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")
_ANY_YEAR = re.compile(r"(?:19|20)\d\d")
_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
# An address starts where its local part's characters start (the look-behind), so that a long run
# of them with no "@" is tried once, not once from every position (which took time in the square of
# its length); the possessive "++" gives nothing back, so failing costs one pass.
_EMAIL_TEXT = re.compile(r"(?<![^\s@\"'<>,;:()\[\]{}\\])[^\s@\"'<>,;:()\[\]{}\\]++@[^\s@\"'<>,;:()\[\]{}\\]+")
_WORD_GAP = r"[\s\-/.,]+"
_DATE_TEXT = re.compile(
    r"(?<![\w.])(?:"
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"                       # 1980-04-23
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"                    # 23/04/1980, 04.23.80
    # 23 Apr 1980, 23-Apr-1980, 23rd April 1980 (every form transforms.normalize reads)
    r"|\d{1,2}(?:st|nd|rd|th)?" + _WORD_GAP + _MONTHS + _WORD_GAP + r"\d{2,4}"
    r"|" + _MONTHS + _WORD_GAP + r"\d{1,2}(?:st|nd|rd|th)?" + _WORD_GAP + r"\d{2,4}"  # April 23, 1980
    r")(?=$|\W|T\d)",
    re.IGNORECASE,
)
# An ISO timestamp (2020-03-27T20:49:20Z) is a record time, not a birth date.
_TIMESTAMP_AFTER = re.compile(r"[T ]\d{2}:\d{2}")
# A run of digits with the separators phone numbers are written with; at least 7 digits.
_PHONE_TEXT = re.compile(r"(?<![\w+])(?:\+|\b00)?\(?\d[\d\s().\-/\u2010-\u2015\u2212]{4,}\d(?!\w)")
# A street line, or an address written as one string, inside text that is not JSON (a clipped line,
# a line written with single quotes).
_STREET_TEXT = re.compile(
    r"""(["'](?:Address[1-4]?|ShippingAddress|MailingAddress|BillingAddress)["']\s*:\s*(["']))"""
    r"""((?:(?!\2)[^\\]|\\.)*)(\2?)""")
# Fields that hold an address: a string or a list in their place (a reason to reject the line) is a street too.
ADDRESS_FIELDS = frozenset({"Address", "ShippingAddress", "MailingAddress", "BillingAddress"})


def mask_email(value: str) -> str:
    """``julia.braun@yahoo.de`` -> ``j***@yahoo.de``."""
    text = str(value).strip()
    if "@" in text and not _EMAIL_TEXT.fullmatch(text):
        # more than one address, or an address with a note or a number beside it
        return scrub_text(text, strict=True)
    local, at, domain = text.rpartition("@")
    if not at:
        return (text[:1] + "***") if text else text
    return f"{local[:1]}***@{domain}"


def mask_phone(value: str) -> str:
    """``+44 20 7946 1346`` -> ``+44 **** **1346``; national notation -> ``**** **1346``."""
    text = _EXTENSION.sub("", str(value).strip())
    digits = re.sub(r"\D", "", text)
    if len(digits) < 4:
        # a phone field holding something else (an email, a note) shows none of it
        return "****" if text else text
    country = None
    if text.startswith("+") or text.startswith("00"):
        try:
            country = phonenumbers.parse("+" + digits[2:] if text.startswith("00") else text, None).country_code
        except phonenumbers.NumberParseException:
            country = None
    prefix = f"+{country} " if country else ""
    return f"{prefix}**** **{digits[-4:]}"


def mask_date(value: str) -> str:
    """``23/04/1980`` -> ``1980-**-**`` (the year alone is kept); no year -> ``****-**-**``."""
    text = str(value)
    match = _YEAR.search(text) or _ANY_YEAR.search(text)
    return f"{match.group(0)}-**-**" if match else "****-**-**"


def _phone_in_text(match: re.Match) -> str:
    found = match.group(0)
    return mask_phone(found) if len(re.sub(r"\D", "", found)) >= 7 else found


def scrub_text(text: str, strict: bool = False) -> str:
    """Mask everything in free text that looks like an email, a date or a phone number.

    Timestamps (a date followed by a time) are kept unless ``strict``: they are
    record times such as ``last_updated``, which reviewers need to judge recency.
    """
    text = _EMAIL_TEXT.sub(lambda m: mask_email(m.group(0)), text)

    def date(match: re.Match) -> str:
        if not strict and _TIMESTAMP_AFTER.match(text, match.end()):
            return match.group(0)
        return mask_date(match.group(0))

    text = _DATE_TEXT.sub(date, text)
    return _PHONE_TEXT.sub(_phone_in_text, text)


class Redactor:
    """Masks values for display; does nothing when ``enabled`` is false."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def field(self, name: str, value):
        """A profile value of field ``name`` (top-level or inside an address)."""
        if not self.enabled or not isinstance(value, str):
            return value
        if name in EMAIL_FIELDS:
            return mask_email(value)
        if name in PHONE_FIELDS:
            return mask_phone(value)
        if name in DATE_FIELDS:
            return mask_date(value)
        if name in STREET_FIELDS or name in ADDRESS_FIELDS:
            return STREET_MASK
        return scrub_text(value)

    def contact(self, value):
        """An EngagementPreferences ``KeyValue``: an email or a phone number."""
        if not self.enabled or not isinstance(value, str):
            return value
        return mask_email(value) if "@" in value else mask_phone(value) if re.search(r"\d{4}", value) else scrub_text(value)

    def text(self, value):
        """Free text (attribute values, reasons, blocking keys)."""
        if not self.enabled or not isinstance(value, str):
            return value
        return scrub_text(value)

    def raw(self, value):
        """A raw input line (rejected records).

        A line that is JSON is masked field by field like a profile; any other text
        loses its street lines by pattern. Then everything email-, phone- or
        date-like is masked, timestamps included.
        """
        if not self.enabled or not isinstance(value, str):
            return value
        try:
            parsed = json.loads(value)
        except ValueError:
            text = _STREET_TEXT.sub(lambda m: m.group(1) + STREET_MASK + m.group(4), value)
        else:
            text = json.dumps(self._structure(parsed, None), ensure_ascii=False)
        return scrub_text(text, strict=True)

    def _structure(self, value, key):
        if isinstance(value, dict):
            return {k: self._structure(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self._structure(v, key) for v in value]
        if not isinstance(value, str):
            return value
        return self.contact(value) if key == "KeyValue" else self.field(key, value)
