"""Workload 25: artifact put and read (1 KB, 1 MB, 100 MB) against plain files.

``python -m benchmarks.artifacts [--quick] [--json]``

``eventlog`` puts each payload with ``store.artifacts.put`` on a durable LMDB store (a
temporary file written and fsynced, linked to its content path, the directory fsynced, the
SHA-256 computed while streaming, then the event's durable commit) and reads it back with
``store.artifacts.read`` (which checks the SHA-256). ``files`` writes the same payloads as
plain files with the same fsyncs (the file, then its directory) and reads them back with
``open().read()``: the limit of a file-based store. Every payload differs (its first bytes
are a counter), so nothing is deduplicated. Figures are MB/s (higher is better); the target
is ≥ 0.8x plain files at 100 MB, put and read.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from typing import Literal

from benchmarks.core import Params, PeerOutput, Row, Sample, Workload, compare_rows
from benchmarks.core import measure_throughput as measure

__all__ = ["WORKLOAD"]

_LABELS = {"eventlog": "eventlog artifacts (LMDB)", "files": "plain files + fsync (limit)"}
_UNIT = "MB/s"


def _params(quick: bool) -> Params:
    if quick:
        return {"seed": 20, "sizes": [1 << 10, 1 << 16], "ops": [10, 4], "reps": 2}
    return {"seed": 20, "sizes": [1 << 10, 1 << 20, 100 << 20], "ops": [100, 10, 1], "reps": 5}


def _label(size: int) -> str:
    return f"{size >> 20} MB" if size >= 1 << 20 else f"{size >> 10} KB"


def _payload(base: bytearray, i: int) -> bytes:
    base[:8] = i.to_bytes(8, "big")
    return bytes(base)


class _Files:
    """Plain files: write, fsync the file, rename, fsync the directory; read with read()."""

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)

    def put(self, name: str, data: bytes) -> str:
        temp = os.path.join(self.root, name + ".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        path = os.path.join(self.root, name)
        os.rename(temp, path)
        dfd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return path

    @staticmethod
    def read(path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    sizes, ops = params["sizes"], params["ops"]
    assert isinstance(sizes, list)
    assert isinstance(ops, list)
    reps = int(params["reps"])  # type: ignore[arg-type]
    rng = random.Random(int(params["seed"]))  # type: ignore[arg-type]
    if peer == "eventlog":
        from eventlog import RunStore

        store = RunStore.open(os.path.join(workdir, "store"))
        sid = store.create_session().id

        def put(name: str, data: bytes) -> object:
            return store.artifacts.put(sid, name, data).id

        def read(ref: object) -> bytes:
            return store.artifacts.read(ref)  # type: ignore[arg-type]

    else:
        files = _Files(os.path.join(workdir, "files"))
        put, read = files.put, files.read  # type: ignore[assignment]
    out: dict[str, Sample] = {}
    counter = 0
    for size, n in zip(sizes, ops, strict=True):
        base = bytearray(rng.randbytes(size))
        written: list[object] = []

        def put_setup(
            size: int = size, n: int = n, base: bytearray = base, written: list[object] = written
        ) -> Callable[[], int]:
            nonlocal counter
            payloads = []
            for _ in range(n):
                counter += 1
                payloads.append((f"p{counter}", _payload(base, counter)))

            def work() -> int:
                for name, data in payloads:
                    written.append(put(name, data))
                return n * size

            return work

        def read_setup(
            size: int = size, n: int = n, written: list[object] = written
        ) -> Callable[[], int]:
            refs = written[-n:]

            def work() -> int:
                for ref in refs:
                    if len(read(ref)) != size:
                        raise AssertionError("short read")
                return n * size

            return work

        label = _label(size)
        for kind, setup in (("put", put_setup), ("read", read_setup)):
            mbs = [x / 1e6 for x in measure(setup, reps=reps)]
            out[f"{kind} {label}"] = Sample(unit=_UNIT, reps=mbs)
    if peer == "eventlog":
        store.close()
    return out


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    sizes = params["sizes"]
    assert isinstance(sizes, list)
    rows: list[Row] = []
    for size in sizes:
        for kind in ("put", "read"):
            variant = f"{kind} {_label(size)}"
            target: dict[str, tuple[str, Literal[">=", "<="], float]] | None = None
            if size >= 100 << 20:
                target = {"files": (f"≥ 0.8x plain files ({kind})", ">=", 0.8)}
            rows += compare_rows(
                25, f"artifact {variant}", outputs, variant, targets=target, labels=_LABELS
            )
    return rows


WORKLOAD = Workload(
    number=25,
    key="artifacts",
    title="artifact put/read (1 KB, 1 MB, 100 MB) vs plain files with fsync",
    peers=("eventlog", "files"),
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
