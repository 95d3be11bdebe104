"""The facades over one shared plan of each operation, with group commit.

:class:`~eventlog.store.run_store.RunStore` (sync) and
:class:`~eventlog.store.async_run_store.AsyncRunStore` (asyncio) both hold one
:class:`~eventlog.store.core.StoreCore` (backend, engine, group committer, wake-up, live side)
and run the plans of :mod:`eventlog.store.plans`. ``builtins`` is the only module that wires
the built-in projectors.
"""
