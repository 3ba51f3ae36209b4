"""Event and list contracts: JSON Schema files (the source of truth) and the typed records.

Modules:
    ``schemas.events``: immutable typed records (click, upload, review, recs.updated).
    ``schemas.edge``: ``decode_event`` (bytes -> event or ``Rejection``; never raises).
    ``schemas.deadletter``: ``DeadLetter`` records for events.dlq.
    ``schemas.limits``: ``Limits`` (size bounds and topic names, from settings).
    ``schemas.validate``: offline JSONL validation (``recstream validate``).
    ``schemas.registry``: the ``json/*.v1.json`` files and compiled validators.
    ``schemas.jsonio``: strict JSON parsing; ``schemas.errors``: the exception hierarchy.

Compatibility rules: ``schemas/COMPATIBILITY.md``.
"""
