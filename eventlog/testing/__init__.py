"""Contract suites a store (and a new backend) must pass; subclass them in your tests.

``StoreContract`` checks the public store API against any backend, ``KVBackendContract`` a
key-value backend (:mod:`eventlog.storage.kv`) on its own: a new backend starts from it
(see :mod:`eventlog.testing.kv`). Memory, LMDB and PostgreSQL run both in this repository's
tests.
"""

from __future__ import annotations

import pkgutil

import pytest

# failing checks of a shipped suite explain themselves (pytest rewrites only test modules):
# registered before the suites are imported
pytest.register_assert_rewrite(*(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__)))

from eventlog.testing.artifacts import ArtifactsContract  # noqa: E402
from eventlog.testing.kv import KVBackendContract  # noqa: E402
from eventlog.testing.store import StoreContract, sample_events  # noqa: E402

__all__ = ["ArtifactsContract", "KVBackendContract", "StoreContract", "sample_events"]
