"""Flex Template entry point (FLEX_TEMPLATE_PYTHON_PY_FILE): the installed job's own CLI.

Not ``pipeline/__main__.py`` run as a file: that would put ``pipeline/`` first on sys.path,
where ``pipeline/io.py`` hides the standard library's ``io``.
"""
import sys

from pipeline.run import main

if __name__ == "__main__":
    sys.exit(main())
