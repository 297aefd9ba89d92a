"""`mofal` commands: placeholder, filled by the issue that owns it."""
