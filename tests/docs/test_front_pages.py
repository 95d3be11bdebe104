"""The Markdown files outside the docs site: short, and their links lead somewhere.

``mkdocs build --strict`` checks the links inside docs/; README.md, ARCHITECTURE.md,
benchmarks/README.md and tests/RELIABILITY.md are read on GitHub, so their relative links (and
the anchors they name in Markdown files) are checked here.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRONT = ["README.md", "ARCHITECTURE.md", "benchmarks/README.md", "tests/RELIABILITY.md"]
# files another part of issue 14 adds (release hygiene); drop from here once they exist
NOT_YET = {"CHANGELOG.md", "LICENSE"}
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """The anchor of a heading, as Python-Markdown's toc (mkdocs) makes it."""
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def _links() -> list[tuple[str, str]]:
    out = []
    for name in FRONT:
        text = re.sub(r"```.*?```", "", (ROOT / name).read_text(), flags=re.S)
        out += [(name, target) for target in _LINK.findall(text)]
    return out


LINKS = _links()


@pytest.mark.parametrize(("page", "target"), LINKS, ids=[f"{p}->{t}" for p, t in LINKS])
def test_relative_link_leads_somewhere(page: str, target: str) -> None:
    if re.match(r"[a-z]+:", target):
        return  # an absolute URL: not checked (no network)
    path, _, anchor = target.partition("#")
    file = (ROOT / page).parent / path if path else ROOT / page
    if not file.exists():
        assert path in NOT_YET, f"{page}: the link {target} leads to no file"
        return
    if anchor and file.suffix == ".md":
        assert anchor in _anchors(file), f"{page}: {file.relative_to(ROOT)} has no #{anchor}"


def test_readme_is_the_front_door_not_the_manual() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size <= 12 * 1024, f"README.md is {size} bytes: move detail into docs/"


def test_architecture_stays_short() -> None:
    size = len((ROOT / "ARCHITECTURE.md").read_bytes())
    assert size <= 10 * 1024, f"ARCHITECTURE.md is {size} bytes: move depth into docs/"
