"""The report of a finished study, read from its graph: the summary table, E(V) fits, glass figures, the campaign.

Every number comes from an output node of the study's tasks, found by process label among the study's called
descendants (the task names are printed, never parsed), so an archive imported into a fresh profile gives the
same report.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ('is_study', 'study_results', 'write_study_report')


def is_study(node) -> bool:
    """Whether ``node`` is the process of a ``mofal study`` WorkGraph."""
    return (getattr(node, 'process_label', None) or '').startswith('WorkGraph<study_')


def _task_name(node) -> str:
    from aiida.common.links import LinkType

    links = node.base.links.get_incoming(link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK)).all()
    return links[0].link_label if links else str(node.pk)


def study_results(node) -> dict:
    """Collect a study's results: ``summary`` rows, ``eos`` (name → fit record and points), ``glass``, ``campaign``."""
    results: dict = {'summary': [], 'eos': {}, 'glass': {}, 'campaign': None}
    for child in sorted(node.called_descendants, key=lambda n: n.pk):
        label = child.process_label
        if not child.is_finished_ok:
            continue
        if label == 'study_summary':
            results['summary'] = child.outputs.result.get_dict()['rows']
        elif label == 'model_energy_volume':
            points = child.outputs.points
            results['eos'][_task_name(child).removeprefix('eos_')] = {
                'fit': child.outputs.fit.get_dict(),
                'volumes': points.get_array('volumes'),
                'energies': points.get_array('energies'),
            }
        elif label == 'EquationOfStateWorkChain' and 'ev' in child.outputs:
            ev = child.outputs.ev.get_dict()  # relaxed E(V): fitted again here with its record's form
            results['eos'][_task_name(child).removeprefix('eos_')] = {
                'fit': {'form': 'birch-murnaghan', 'method': 'fixed-volume relaxations (mofal.eos ev)'},
                'volumes': ev['volumes_A3'],
                'energies': ev['energies_eV'],
            }
        elif label == 'analyse_glass_structure':
            results['glass'][_task_name(child).removeprefix('glass_')] = child.outputs.result.get_dict()
        elif label in ('ClusterCampaignWorkChain', 'TemperatureCampaignWorkChain'):
            results['campaign'] = child
    return results


def write_study_report(node, output: str | Path, campaign_report=None) -> dict:
    """Write ``index.html`` (summary table, E(V) fits, glass figures, link to the campaign's page) to ``output``.

    :param campaign_report: ``callable(campaign_node, directory) -> dict`` writing the campaign's own report (the
        CLI passes ``mofal report``'s), put in ``output/campaign``.
    """
    import warnings

    from aiida_mofal.analysis.eos import fit_energy_volume
    from aiida_mofal.analysis.glass_plots import plot_glass
    from aiida_mofal.analysis.html_report import Section, write_html_report
    from aiida_mofal.analysis.mechanics_plots import plot_energy_volume

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    results = study_results(node)
    sections = []
    rows = results['summary']
    if rows:
        header = ['structure', 'B0_GPa', 'B0_GPa_err', 'V0_A3', 'density_g_cm3']
        header += [key for key in ('rings', 'coordination') if any(key in row for row in rows)]
        table = [[_cell(row.get(key)) for key in header] for row in rows]
        sections.append(Section('Summary', header=header, rows=table))
    figures = {}
    for name, eos in sorted(results['eos'].items()):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            fit = fit_energy_volume(eos['volumes'], eos['energies'], form=eos['fit']['form'], allow_unbracketed=True)
        figures[f'E(V) {name}'] = plot_energy_volume(
            fit, output / f'eos_{name}.png', title=f'{name}: {eos["fit"]["method"]}'
        )
    if figures:
        methods = sorted({eos['fit']['method'] for eos in results['eos'].values()})
        text = f"E(V) with the study's MACE model ({'; '.join(methods)}), Birch–Murnaghan fit."
        sections.append(Section('Equations of state', text=text, figures=figures))
    if results['glass']:
        paths = plot_glass(results['glass'], output, prefix='glass')
        sections.append(Section('Glass analysis', figures={path.stem: path for path in paths}))
    campaign = results['campaign']
    if campaign is not None and campaign_report is not None:
        written = campaign_report(campaign, output / 'campaign')
        page = Path(written.get('html') or written['summary'])
        sections.insert(
            0, Section('Campaign', text=f'Campaign {campaign.pk}: {campaign.label}', files={page.name: page})
        )
    state = f'{node.process_state.value}, exit status {node.exit_status}'
    page = write_html_report(output, f'Study {node.pk}: {node.process_label}', state, sections)
    return {'study': node.pk, 'html': str(page), 'summary': rows, 'figures': {k: str(v) for k, v in figures.items()}}


def _cell(value):
    """Return a summary cell: a number or text as it is, ring counts or coordinations as ``4: 4, 6: 16``."""
    if isinstance(value, dict):
        return ', '.join(f'{key}: {count:g}' if isinstance(count, int | float) else f'{key}: {count}'
                         for key, count in value.items())  # fmt: skip
    return value
