"""The facades over one shared plan of each operation, with group commit.

:class:`~eventlog.store.run_store.RunStore` (sync) and
:class:`~eventlog.store.async_run_store.AsyncRunStore` (asyncio). The only layer that wires the
built-in projectors.
"""
