"""Packaging: the three layers install as one package; every entry point loads, from the tree and a wheel."""

import re
import subprocess
import sys
import sysconfig
from importlib.metadata import distribution
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHECK_ENTRY_POINTS = """
import sys
from importlib.metadata import distribution
import aiida_mofal, aiida_mofal.calculations, aiida_mofal.workchains
dist = distribution('aiida-mofal')
for ep in dist.entry_points:
    ep.load()
print(aiida_mofal.__file__)
print(aiida_mofal.calculations.__file__)
print(len(dist.entry_points))
"""


def test_every_entry_point_loads():
    entry_points = distribution('aiida-mofal').entry_points
    groups = {ep.group for ep in entry_points}
    assert {'aiida.data', 'aiida.calculations', 'console_scripts'} <= groups
    for entry_point in entry_points:
        assert entry_point.load() is not None


def test_documented_entry_points_exist():
    """Every row of the entry-point table in docs/reference/cli.md names an entry point the distribution has."""
    table = (ROOT / 'docs' / 'reference' / 'cli.md').read_text()
    rows = re.findall(r'^\| `([\w.]+)` \| `([\w.]+)` \| `([\w.:]+)` \|$', table, re.M)
    installed = {(ep.group, ep.name, ep.value) for ep in distribution('aiida-mofal').entry_points}
    assert rows, 'no entry-point table found'
    assert set(rows) <= installed, sorted(set(rows) - installed)


def test_verdi_lists_the_data_plugins():
    verdi = Path(sys.executable).parent / 'verdi'
    listed = subprocess.run([str(verdi), 'plugin', 'list', 'aiida.data'], capture_output=True, text=True, timeout=120)
    assert '* mofal.dataset' in listed.stdout and '* mofal.mace_model' in listed.stdout


def test_imports_go_downward_only():
    """Science (src/) never imports the AiiDA layers; calculations never import workchains."""
    upward = re.compile(r'^\s*(from|import)\s+aiida_mofal\.(calculations|workchains)\b', re.M)
    for path in (ROOT / 'src' / 'aiida_mofal').rglob('*.py'):
        if path.parent.name in ('cli',):  # the CLI is the top: it may use every layer
            continue
        assert not upward.search(path.read_text()), f'{path} imports an upper layer'
    for path in (ROOT / 'calculations').rglob('*.py'):
        assert 'aiida_mofal.workchains' not in path.read_text(), f'{path} imports workchains'


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv(tmp_path):
    """Build a wheel from the tree, install it into a new venv, import both mapped packages, load entry points.

    The fresh venv gets the project's dependencies through a path entry to this environment's site-packages
    (installing torch and friends again would take minutes); aiida-mofal itself comes only from the wheel.
    """
    pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check']
    subprocess.run(
        [*pip, 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', str(tmp_path / 'dist'), str(ROOT)],
        check=True,
        timeout=600,
    )
    (wheel,) = (tmp_path / 'dist').glob('aiida_mofal-*.whl')
    venv = tmp_path / 'fresh'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True, timeout=300)
    python = venv / 'bin' / 'python'
    subprocess.run([*pip, '--python', str(python), 'install', '--no-deps', '-q', str(wheel)], check=True, timeout=600)
    site = subprocess.run(
        [str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # a plain path line: the editable install's own .pth finder in that directory is not activated
    (Path(site) / 'deps.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    result = subprocess.run(
        [str(python), '-c', CHECK_ENTRY_POINTS], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    package, calculations, count = result.stdout.split()
    assert package.startswith(str(venv)) and calculations.startswith(str(venv))
    assert calculations.endswith('aiida_mofal/calculations/__init__.py')
    assert int(count) == len(distribution('aiida-mofal').entry_points)
