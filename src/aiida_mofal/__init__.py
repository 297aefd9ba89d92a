"""aiida-mofal: active learning of MACE potentials for ordered, defective and amorphous MOFs with AiiDA."""

__version__ = '0.1.0'
