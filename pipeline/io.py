"""Output wiring: JSON Lines files with exact names, local or s3:// (Beam filesystems)."""
from __future__ import annotations

import json
import logging
import os
import shutil

import apache_beam as beam
import orjson
from apache_beam.io.filesystems import FileSystems


_GLOB = set("*?[")


def _is_local(path: str) -> bool:
    return "://" not in path


def _files_matched(pattern: str, given: str) -> list[str]:
    """The files (not directories) a pattern matches; none when it matches nothing. A pattern that
    cannot be listed at all (no such bucket, no permission, no filesystem for its scheme) raises
    ValueError with the cause, under the name the user ``given``."""
    try:
        found = FileSystems.match([pattern])[0].metadata_list
    except Exception as error:  # noqa: BLE001  (Beam wraps each filesystem's own errors)
        raise ValueError(f"--input {given!r} cannot be listed: {error}") from error
    return [m.path for m in found if not m.path.endswith("/") and not (_is_local(m.path) and os.path.isdir(m.path))]


def resolve_inputs(patterns: list[str], warnings: list[str] | None = None) -> list[str]:
    """The ``--input`` patterns as the job reads them, checked before anything runs.

    A local path is made absolute (so that one file named two ways is one file), and a directory
    (local, or an s3:// prefix without a wildcard) stands for the files in it. Raises ValueError
    naming a pattern that matches no file: a job that reads nothing would write an empty plan
    that looks like a domain without duplicates. What is worth a warning (files a directory leaves
    out) is logged, and appended to ``warnings`` if given (for summary.json and the report)."""
    if not patterns:
        raise ValueError("--input names no file")
    resolved = []
    for pattern in patterns:
        path = os.path.abspath(os.path.expanduser(pattern)) if _is_local(pattern) else pattern
        found = [] if _is_local(path) and os.path.isdir(path) else _files_matched(path, pattern)
        if not found and not _GLOB & set(path):   # a directory, or an object store's prefix
            directory = path.rstrip("/")
            path = FileSystems.join(directory, "*")
            found = _files_matched(path, pattern)
            if found:
                _warn_of_files_below(pattern, directory, warnings)
        if not found:
            raise ValueError(f"--input {pattern!r} matches no file")
        resolved.append(path)
    return resolved


def _warn_of_files_below(given: str, directory: str, warnings: list[str] | None) -> None:
    """Log a warning when a local directory given as ``--input`` has files in its sub-folders: it
    stands for the files directly in it, and an export kept in dated sub-folders would otherwise be
    read in part without a word. (An s3:// prefix has no folders: its pattern matches every key
    below it.)"""
    if not _is_local(directory) or not os.path.isdir(directory):
        return
    below = sum(len(files) for top, _, files in os.walk(directory) if top != directory)
    if below:
        warning = (f"--input {given!r} reads the files directly in it; {below} file(s) in its sub-folders are not "
                   f"read (name them too, or use {os.path.join(directory, '**')!r} to read every file below it)")
        logging.getLogger(__name__).warning("%s", warning)
        if warnings is not None:
            warnings.append(warning)


def allow_empty_s3_objects() -> None:
    """Let Beam write files of zero bytes to S3 (an empty ``rejected.jsonl``, an empty shard).

    Beam's S3 uploader (``apache_beam.io.aws.s3io.S3Uploader``, 2.77) completes a multipart upload
    with the parts it has sent; a file of zero bytes has sent none, and S3 refuses to complete an
    upload of no parts (MalformedXML), so a clean export written to ``s3://`` failed the job at its
    first empty output. Such a file now goes as one empty part, the last (and only) part of its
    upload, which may be of any size. Called in every process that writes (see ``transforms``)."""
    try:
        from apache_beam.io.aws import s3io
    except ImportError:   # Beam without its aws extra: no s3:// paths at all
        return
    uploader = getattr(s3io, "S3Uploader", None)
    if uploader is None or getattr(uploader.finish, "allows_empty", False):
        return
    original = uploader.finish

    def finish(self):
        if not self.parts and not self.buffer and self.last_error is None:
            self._write_to_s3(b"")
        return original(self)

    finish.allows_empty = True
    uploader.finish = finish


def check_output(directory: str) -> None:
    """Raise ValueError when ``--output`` cannot be a directory (a local file is in the way)."""
    if _is_local(directory) and os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(f"--output {directory!r} is a file; it must be a directory (it is made if missing)")


def output_path(directory: str, name: str) -> str:
    return FileSystems.join(directory, name)


def dumps(record) -> str:
    """One JSON line; orjson is fast and keeps unicode as UTF-8."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()


class WriteJsonLines(beam.PTransform):
    """Write records to one file named exactly ``path`` (one JSON object per line).

    Each bundle writes its own shard (``beam-temp-<name>-part-...`` beside ``path``), and one
    step then copies the shards, in name order, into ``path`` and deletes them. A single-shard
    write would instead group every line under one key first: a runner holds all of
    ``clusters.jsonl`` in memory (a gigabyte at a million profiles), and one worker writes it.
    Returns a PCollection holding ``path`` once it is written.
    """

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def expand(self, records):
        directory, name = FileSystems.split(self._path)
        shards = (
            records
            | "ToJson" >> beam.Map(dumps)
            | "WriteShards" >> beam.io.WriteToText(FileSystems.join(directory, f"beam-temp-{name}-part"))
        )
        return (
            shards
            | "ShardNames" >> beam.combiners.ToList()
            | "Concatenate" >> beam.Map(concatenate, self._path)
        )


def concatenate(shards: list[str], path: str) -> str:
    """Copy the ``shards`` files, in name order, into one file named ``path``; delete them."""
    shards = sorted(shards)
    with FileSystems.create(path, mime_type="application/x-ndjson") as out:
        for shard in shards:
            with FileSystems.open(shard) as handle:
                shutil.copyfileobj(handle, out, 1 << 20)
    if shards:
        FileSystems.delete(shards)
    return path


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
