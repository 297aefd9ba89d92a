"""Molecular dynamics: the protocol language (ensembles, schedules, units) and input generation for each engine."""
