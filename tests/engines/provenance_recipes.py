"""Run the QueryBuilder recipes of docs/guide/provenance.md on a profile; print what each one found, as JSON.

Usage (the profile by AIIDA_PATH): python provenance_recipes.py CAMPAIGN_PK CYCLE. Each recipe is a fenced block
that starts with ``# -- recipe: NAME``; its ``CAMPAIGN = ...`` / ``CAMPAIGN, CYCLE = ...`` line is set to the
arguments, and the recipe's result variables are printed instead of its ``print``.
"""

import json
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / 'docs' / 'guide' / 'provenance.md'
RESULTS = {
    'clusters-of-a-cycle': ['clusters'],
    'models-and-errors': ['models'],
    'failed-labels': ['failed', 'failed_jobs'],
}


def recipes(text: str) -> dict[str, str]:
    """Return the recipes of the page by name."""
    blocks = re.findall(r'```python\n(.*?)```', text, re.S)
    return {
        re.match(r'# -- recipe: (\S+)', block).group(1): block for block in blocks if block.startswith('# -- recipe')
    }


def main(campaign: int, cycle: int) -> None:
    from aiida import load_profile

    load_profile()
    found = {}
    for name, code in recipes(DOCS.read_text()).items():
        code = re.sub(r'^CAMPAIGN, CYCLE = .*$', f'CAMPAIGN, CYCLE = {campaign}, {cycle}', code, flags=re.M)
        code = re.sub(r'^CAMPAIGN = .*$', f'CAMPAIGN = {campaign}', code, flags=re.M)
        code = re.sub(r'^print\(.*\)$', '', code, flags=re.M)
        namespace: dict = {}
        exec(compile(code, f'{DOCS.name}:{name}', 'exec'), namespace)  # noqa: S102 -- the docs' own recipes
        found[name] = {key: namespace[key] for key in RESULTS[name]}
    print(json.dumps(found, default=str))


if __name__ == '__main__':
    main(int(sys.argv[1]), int(sys.argv[2]))
