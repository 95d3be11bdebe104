"""The log's rules over one KV transaction, and the projector runner and protocol.

Streams, seq and positions, idempotency keys, cascading deletes: written once against
:class:`eventlog.storage.kv.KVTxn`, used by every backend.
"""
