"""Offline training of the fusion model: datasets to item inputs, per-user sequences, the
training loop and the prequential check (``recstream train``)."""
