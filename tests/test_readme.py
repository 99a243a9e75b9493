"""The README is a front door that stays true: short, and every headline figure equal to the
benchmark result it names."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from tools.mkdocs_hooks import result

README = (ROOT / "README.md").read_text()
ROW = re.compile(
    r"^\| (?P<label>[^|]+) \| (?P<value>[\d.,]+) \| [^|]+ "
    r"\| `(?P<file>[^`]+)` `(?P<path>[^`]+)` \|$"
)


def test_every_headline_figure_is_its_benchmark_result() -> None:
    rows = [m.groupdict() for line in README.splitlines() if (m := ROW.match(line))]
    assert len(rows) >= 5
    for row in rows:
        assert float(row["value"].replace(",", "")) == result(row["file"], row["path"]), row


def test_the_readme_is_read_in_minutes_and_its_links_resolve() -> None:
    assert len(README.splitlines()) <= 150
    for target in re.findall(r"\]\((docs/[^)#]+)", README):
        assert (ROOT / target).is_file(), target
