"""Sphinx configuration of the sklearn-mixed documentation.

Build (from the project root, after ``pip install -e ".[docs]"``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The markdown pages (``docs/*.md``) are read by MyST, the API reference comes
from the numpydoc docstrings (``api.rst``, one autosummary line per object)
and sphinx-gallery runs ``examples/plot_*.py`` into ``docs/auto_examples``.
Nothing is fetched from the network (no intersphinx): the build runs where
only the package registries are reachable.
"""

import re

import matplotlib
from docutils import nodes

import sklearn_mixed

matplotlib.use("Agg")  # the gallery runs the examples in this process, without a display

project = "sklearn-mixed"
author = "sklearn-mixed developers"
copyright = "sklearn-mixed developers"
version = release = sklearn_mixed.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb"]

# -- MyST: the markdown pages, kept readable on GitHub -----------------------
myst_heading_anchors = 3  # "page.md#a-section" links resolve as on GitHub

# -- API reference -----------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False  # autodoc documents the members (_templates/entry.rst)
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True  # Attributes as a field list, not objects

# -- sphinx-gallery: examples/plot_*.py with their figures ----------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # run every plot_*.py
    "ignore_pattern": r"(__init__|demo)\.py$",  # demo.py is a script, not a gallery page
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("sklearn_mixed",),
    "reference_url": {"sklearn_mixed": None},
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
}

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-mixed {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "header_links_before_dropdown": 4,
    "show_toc_level": 2,
}
html_show_sourcelink = False
# The narrative pages have no sub-pages: no left sidebar, wider text.
html_sidebars = {
    page: []
    for page in (
        "index",
        "five_minutes",
        "lme4_users",
        "pipelines",
        "new_groups",
        "crossed",
        "how_it_works",
        "benchmarks",
    )
}


# The pages link to files of the repository outside docs/ with relative paths
# (../examples/plot_x.py, ../benchmarks/README.md), which work on GitHub.  In
# the site, a gallery example's link goes to its rendered page and any other
# file becomes a download (MyST's "path:" links), so no link is left dangling.
_OUTSIDE_LINK = re.compile(r"\]\(\.\./([^)#\s]+)\)")


def _outside_link(match):
    target = match.group(1)
    example = re.fullmatch(r"examples/(plot_\w+)\.py", target)
    if example:
        return f"](auto_examples/{example.group(1)}.rst)"
    return f"](path:../{target})"


def _rewrite_outside_links(app, docname, source):
    if not docname.startswith(("auto_examples/", "gen_modules/")):
        source[0] = _OUTSIDE_LINK.sub(_outside_link, source[0])


# The scikit-learn docstrings of the inherited set_{fit,predict,score}_request
# and set_output methods cross-reference scikit-learn's own documentation; point those
# references at it (plain links: intersphinx would need the network).
SKLEARN_DOCS = "https://scikit-learn.org/stable/"
SKLEARN_TARGETS = {
    ("term", "meta-estimator"): "glossary.html#term-meta-estimator",
    ("ref", "metadata_routing"): "metadata_routing.html",
    # the inherited set_output of transformers (MixedEffectsEncoder)
    ("ref", "df_output_transform"): "auto_examples/miscellaneous/plot_set_output.html",
    ("ref", "sphx_glr_auto_examples_miscellaneous_plot_set_output.py"): (
        "auto_examples/miscellaneous/plot_set_output.html"
    ),
}


def _link_sklearn_references(app, env, node, contnode):
    page = SKLEARN_TARGETS.get((node.get("reftype"), node.get("reftarget")))
    if page is None:
        return None
    reference = nodes.reference("", "", internal=False, refuri=SKLEARN_DOCS + page)
    reference += contnode.deepcopy()
    return reference


def setup(app):
    app.connect("source-read", _rewrite_outside_links)
    app.connect("missing-reference", _link_sklearn_references)
