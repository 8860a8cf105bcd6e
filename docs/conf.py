"""Sphinx configuration of the sb3-maxrl documentation (``python -m sphinx -W --keep-going -b html docs docs/_build/html``)."""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))  # _ext: the estimator table written from the registry

import sb3_maxrl  # noqa: E402

project = "sb3-maxrl"
author = "sb3-maxrl developers"
copyright = "2026, sb3-maxrl developers"
version = release = sb3_maxrl.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "myst_parser",
    "_ext.estimator_table",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Members defined in each module only (a package's __all__ re-exports would document objects twice), and no
# docstrings inherited from gymnasium or SB3 (theirs follow other conventions; ours are the reST :param: ones).
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_inherit_docstrings = False
autosummary_generate = True

html_theme = "sphinx_rtd_theme"
html_title = f"sb3-maxrl {release}"
