"""The embeddings contract on PostgreSQL with pgvector (a server from the pgserver package).

The debian server the other PostgreSQL tests use has no ``vector`` extension; the ``pgserver``
package ships a PostgreSQL with pgvector, started here once for the module (as its own
unprivileged system user when the tests run as root). Without it the module skips, saying why.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventlog import RunStore
from eventlog.testing.embeddings import EmbeddingsContract

_server: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def pgvector_server() -> Iterator[str]:
    try:
        with warnings.catch_warnings():  # platformdirs: XDG_RUNTIME_DIR unset (a fallback)
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError:
        pytest.skip("pgserver is not installed (pip install pgserver): no pgvector server")
    # as root, pgserver runs PostgreSQL as its own user, who cannot enter pytest's 0700
    # temporary directories: a directory of its own under /tmp instead
    data = Path(tempfile.mkdtemp(prefix="eventlog-pgvector-"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            get_server: Any = pgserver.__dict__["get_server"]
            server: Any = get_server(data, cleanup_mode="stop")
        uri = server.get_uri()
    except Exception as exc:
        shutil.rmtree(data, ignore_errors=True)
        pytest.skip(f"pgserver's PostgreSQL did not start: {str(exc).splitlines()[0]}")
    _server["uri"] = uri
    yield uri
    pg_ctl: Any = importlib.import_module("pgserver._commands").pg_ctl

    # stop at once (the default waits for a checkpoint: seconds); the data is thrown away
    pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=data, user=server.system_user)
    shutil.rmtree(data, ignore_errors=True)


def url_for(path: Path) -> str:
    schema = "v_" + hashlib.blake2b(str(path).encode(), digest_size=10).hexdigest()
    return f"{_server['uri']}&schema={schema}"


class TestPgvectorEmbeddings(EmbeddingsContract):
    def make_store(self, path: Path) -> RunStore:
        return RunStore.open(url_for(path), durability="fast")

    def test_uses_pgvector(self, store: RunStore) -> None:
        store.embeddings.upsert_many([("a", [1.0, 0.0]), ("b", [0.0, 1.0])])
        assert store.embeddings.search([1.0, 0.1], k=1)[0].id == "a"
        status = store.embeddings.status()
        assert status["kind"] == "pgvector"
        assert status["behind"] == 0
        store.embeddings.delete("a")
        assert [h.id for h in store.embeddings.search([1.0, 0.1])] == ["b"]
        assert store.embeddings.verify() == []
