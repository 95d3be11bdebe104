"""Contract suites a store (and a new backend) must pass; subclass them in your tests.

``StoreContract`` checks the public store API against any backend (memory, LMDB and
PostgreSQL run it in this repository's tests).
"""

from __future__ import annotations

from eventlog.testing.store import StoreContract, sample_events

__all__ = ["StoreContract", "sample_events"]
