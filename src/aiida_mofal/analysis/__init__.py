"""Analysis of trajectories and models: EOS fits, structure statistics, integrity checks, plots."""
