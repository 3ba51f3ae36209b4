"""Data package: one valid example document per contract (used by tests and docs)."""
