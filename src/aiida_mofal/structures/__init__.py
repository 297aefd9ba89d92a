"""Structures of MOFs: periodic bond graphs, building blocks, formal charges and defect builders."""
