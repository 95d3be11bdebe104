"""Storage backends: one module per backend, each implementing :class:`eventlog.kv.KVBackend`."""
