"""``eventlog artifacts`` and ``eventlog artifact`` through the installed script."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from test_cli_subprocess import child_env, eventlog

from eventlog import RunStore


def _run(*argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [eventlog(), *argv], capture_output=True, timeout=120, check=False, env=child_env()
    )


def test_list_read_stats_and_verify(tmp_path: Path) -> None:
    db = str(tmp_path / "store")
    data = bytes(range(256)) * 8000  # 2 MB, binary
    with RunStore.open(db) as store:
        sid = store.create_session().id
        v1 = store.artifacts.put(sid, "report.md", b"# one")
        v2 = store.artifacts.put(sid, "report.md", b"# two", content_type="text/markdown")
        big = store.artifacts.put(sid, "data.bin", data)
    listed = _run("artifacts", str(sid)[:8], "--db", db, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [str(big.id), str(v2.id), str(v1.id)]
    assert rows[1]["content_type"] == "text/markdown"
    assert rows[0]["size"] == len(data)

    out = tmp_path / "out.bin"
    assert _run("artifact", str(big.id), "-o", str(out), "--db", db).returncode == 0
    assert out.read_bytes() == data
    to_stdout = _run("artifact", str(v2.id), "-o", "-", "--db", db)
    assert (to_stdout.returncode, to_stdout.stdout) == (0, b"# two")
    missing = _run("artifact", "00000000-0000-0000-0000-000000000000", "-o", "-", "--db", db)
    assert missing.returncode == 1
    assert b"not found" in missing.stderr
    assert b"Traceback" not in missing.stderr

    stats = json.loads(_run("stats", "--json", "--db", db).stdout)
    assert (stats["artifacts"], stats["artifact_bytes"]) == (3, len(data) + 10)

    blob = tmp_path / "store" / "blobs" / "sha256" / big.sha256[:2] / big.sha256
    blob.write_bytes(b"\xff" + data[1:])  # damaged on disk
    verify = _run("verify", "--db", db, "--json")
    assert verify.returncode == 1
    assert [p["kind"] for p in json.loads(verify.stdout)] == ["blob_corrupt"]
    damaged = _run("artifact", str(big.id), "-o", str(tmp_path / "bad.bin"), "--db", db)
    assert damaged.returncode == 1
    assert str(big.id) in damaged.stderr.decode()
    assert not (tmp_path / "bad.bin").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".eventlog-")] == []
