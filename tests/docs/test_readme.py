"""Every ```python block of the README runs as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pg_support import drop_schema, require_server

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(
    index: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if "postgresql://" in BLOCKS[index]:
        require_server()
        drop_schema("readme_example")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), {"__name__": "readme"})
    finally:
        os.chdir(cwd)
        if "postgresql://" in BLOCKS[index]:
            drop_schema("readme_example")
    if index == 0:
        assert capsys.readouterr().out.splitlines()[0] == "6 7"
