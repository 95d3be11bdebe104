"""The web viewer's tests (a package: its conftest must not clash with tests/conftest.py)."""
