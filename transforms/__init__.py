"""The job's Beam transforms, one module per step.

Importing the package, as every process that runs one of the steps does first, makes
Python's cyclic garbage collector run less often there (see
``transforms.packing.collect_garbage_less_often``) and lets Beam write empty files to S3
(``pipeline.io.allow_empty_s3_objects``).
"""
from pipeline.io import allow_empty_s3_objects
from transforms.packing import collect_garbage_less_often

collect_garbage_less_often()
allow_empty_s3_objects()
