"""A local Amazon Connect Customer Profiles endpoint for tests and benchmarks.

Not part of the job shipped to Beam workers.  See emulator/README.md.
"""
from .faults import FaultConfig
from .server import Emulator, create_emulator, read_profiles_jsonl, start_emulator
from .store import new_profile_id

__all__ = [
    'Emulator',
    'FaultConfig',
    'create_emulator',
    'new_profile_id',
    'read_profiles_jsonl',
    'start_emulator',
]
