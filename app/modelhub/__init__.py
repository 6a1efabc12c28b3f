"""Putting a model on the device: the catalog, the GGUF check, download, import, the registry."""
