"""Data package: the JSON Schema files (draft 2020-12), the contracts' source of truth."""
