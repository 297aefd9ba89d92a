"""Sphinx configuration of the aiida-mofal documentation (MyST Markdown).

``aiida.sphinxext`` documents each work chain's spec from the class itself (``docs/reference/workchains.md``); its
directive loads a profile, so a temporary in-memory one (``core.sqlite_temp``) is loaded here: the docs build needs
no ``mofal setup`` and never touches a user's profiles.
"""

from aiida.manage.configuration import load_profile
from aiida.storage.sqlite_temp import SqliteTempBackend

load_profile(SqliteTempBackend.create_profile('mofal-docs'), allow_switch=True)

project = 'aiida-mofal'
author = 'aiida-mofal developers'
copyright = '2026, aiida-mofal developers'
extensions = ['myst_parser', 'aiida.sphinxext']
myst_enable_extensions = ['colon_fence', 'dollarmath']
source_suffix = {'.md': 'markdown'}
exclude_patterns = ['_build']
html_theme = 'alabaster'
suppress_warnings = ['myst.header']
