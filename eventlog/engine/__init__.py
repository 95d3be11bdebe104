"""The log's rules over one KV transaction, and the projector runner and protocol.

Streams, seq and positions, idempotency keys, cascading deletes: written once against
:class:`eventlog.storage.kv.KVTxn`, used by every backend. :class:`~eventlog.engine.core.Engine`
owns one object per concern: the stream index (``stream_index``), event reads (``reads``), the
append step (``appends``), sessions and runs (``records``), streams of other kinds (``streams``)
and the projectors (``projectors``, their protocol in ``protocols``).
"""
