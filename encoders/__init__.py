"""Torch models that turn items and events into embeddings: text, image, fusion; training and export."""
