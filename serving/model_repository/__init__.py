"""Python-backend model sources; each sub-folder is one Triton model (configs are generated)."""
