"""Shim for Beam workers: ``--setup_file ./setup.py`` installs the package on each worker.

All metadata lives in pyproject.toml; setuptools reads it from there.
"""
import setuptools

setuptools.setup()
