"""CP2K as the labelling engine: input generation from a protocol, output parsing, unit conventions.

Pure Python (no AiiDA): the calcjob parser and the work chains in the AiiDA layers call these functions.
"""
