"""The job's Beam transforms, one module per step.

Importing the package, as every process that runs one of the steps does first, makes
Python's cyclic garbage collector run less often there (see
``transforms.packing.collect_garbage_less_often``).
"""
from transforms.packing import collect_garbage_less_often

collect_garbage_less_often()
