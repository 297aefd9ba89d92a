"""Study files: a paper's whole study (campaign, glasses, bulk moduli, glass analysis) in one YAML document."""
