"""Event and list contracts: JSON Schema files (the source of truth) and the typed records."""
