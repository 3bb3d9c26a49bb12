"""``python -m pipeline``: the same entry point as the ``profile-dedup`` command."""
import sys

from pipeline.run import main

sys.exit(main())
