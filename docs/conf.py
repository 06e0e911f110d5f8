"""Sphinx configuration for the flaskstack documentation.

Build with warnings as errors, as CI does::

    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys

import flaskstack

# The local extension that generates the config and check references.
sys.path.insert(0, os.path.abspath("_ext"))

# -- Project --------------------------------------------------------------

project = "flaskstack"
copyright = "the flaskstack developers"
author = "The flaskstack developers"
release = flaskstack.__version__
version = ".".join(release.split(".")[:2])

# -- General --------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "flaskstack_docs",
]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
nitpicky = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_preserve_defaults = True

# -- HTML -----------------------------------------------------------------

html_theme = "alabaster"
html_theme_options = {
    "description": "A batteries-included extension bundle for Flask.",
    "fixed_sidebar": True,
    "show_powered_by": False,
    "show_relbars": True,
}
html_sidebars = {
    "**": ["about.html", "navigation.html", "relations.html", "searchbox.html"],
}
html_title = f"flaskstack {release}"
html_show_sourcelink = False
html_static_path: list[str] = []
