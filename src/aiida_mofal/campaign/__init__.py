"""The cluster-based active-learning campaign: its file format, initial data, selection and stop rules."""
