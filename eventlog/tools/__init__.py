"""Whole-store tools over the engine: JSONL export/import, copy between backends, verify."""
