"""Output wiring: JSON Lines files with exact names, local or s3:// (Beam filesystems)."""
from __future__ import annotations

import json

import apache_beam as beam
import orjson
from apache_beam.io.filesystems import FileSystems


def output_path(directory: str, name: str) -> str:
    return FileSystems.join(directory, name)


def dumps(record) -> str:
    """One JSON line; orjson is fast and keeps unicode as UTF-8."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()


class WriteJsonLines(beam.PTransform):
    """Write records to one file named exactly ``path`` (one JSON object per line)."""

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def expand(self, records):
        return (
            records
            | "ToJson" >> beam.Map(dumps)
            | "Write" >> beam.io.WriteToText(self._path, shard_name_template="", num_shards=1)
        )


class WriteJson(beam.PTransform):
    """Write a single-element PCollection as an indented JSON document named ``path``."""

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def expand(self, single):
        return (
            single
            | "ToJson" >> beam.Map(lambda value: json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))
            | "Write" >> beam.io.WriteToText(self._path, shard_name_template="", num_shards=1)
        )


def read_json(path: str):
    with FileSystems.open(path) as handle:
        return json.loads(handle.read().decode("utf-8"))
