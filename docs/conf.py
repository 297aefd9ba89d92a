"""Sphinx configuration of the aiida-mofal documentation (MyST Markdown)."""

project = 'aiida-mofal'
author = 'aiida-mofal developers'
copyright = '2026, aiida-mofal developers'
extensions = ['myst_parser']
myst_enable_extensions = ['colon_fence', 'dollarmath']
source_suffix = {'.md': 'markdown'}
exclude_patterns = ['_build']
html_theme = 'alabaster'
suppress_warnings = ['myst.header']
