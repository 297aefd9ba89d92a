"""Leaves of the provenance graph: CalcJobs and calcfunctions, one remote job or pure function each."""
