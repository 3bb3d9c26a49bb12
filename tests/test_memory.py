"""Tests for pipeline/memory.py: glibc's thresholds fixed here and passed to worker processes."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline import memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc is Linux only")


@pytest.fixture
def clean_environment(monkeypatch):
    for name in memory.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_thresholds_are_applied_and_passed_to_child_processes(clean_environment):
    assert memory.return_freed_memory() is True
    assert {name: os.environ[name] for name in memory.ENVIRONMENT} == {
        "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
    seen = subprocess.run([sys.executable, "-c", "import os; print(os.environ['MALLOC_MMAP_THRESHOLD_'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert seen == "131072"


def test_a_users_own_values_are_kept(clean_environment):
    clean_environment.setenv("MALLOC_MMAP_THRESHOLD_", "262144")
    assert memory.return_freed_memory() is True
    assert os.environ["MALLOC_MMAP_THRESHOLD_"] == "262144"
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "131072"


def test_a_value_that_is_not_a_number_is_left_to_glibc(clean_environment):
    clean_environment.setenv("MALLOC_TRIM_THRESHOLD_", "lots")
    assert memory.return_freed_memory() is False
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "lots"
