"""The README's table of Redis key families ("Redis keys"), parsed: the one list of every key
the system writes and what bounds it. The key-bounds test, its unit test and the memory
benchmark all read it from there.

A pattern is written as the key is, in backticks: `{pN}` is a partition's hash tag, `<name>`
one segment (no `:`), `*` the rest of the key (anything). A bound is one of

* `TTL` — every key expires;
* `cap` — a stream, list or sorted set kept at most that long (the number in the cell);
* `retention` — a stream trimmed once its consumer groups are done with its entries, or a
  sorted set scored by time whose entries go past the settings the cell names;
* `data` — the data itself (aggregates, read models, users): as big as what it describes;
* `fixed` — a fixed number of keys of bounded size (one per partition, projection, ...).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Redis keys"
KINDS = ("TTL", "cap", "retention", "data", "fixed")
Kind = Literal["TTL", "cap", "retention", "data", "fixed"]
_CELL_CODE = re.compile(r"`([^`]+)`")
_NUMBER = re.compile(r"\d[\d,]*")
_SETTING = re.compile(r"[A-Z]+(?:_[A-Z0-9]+)+")
_PART = re.compile(r"\{pN\}|<[^>]+>|\*")


@dataclass(frozen=True)
class Family:
    pattern: str
    server: Literal["write", "read"]
    holds: str
    grows: str
    bound: str

    @property
    def kind(self) -> Kind:
        head = self.bound.split(":", 1)[0].strip()
        assert head in KINDS, f"{self.pattern}: bound {self.bound!r} is not one of {KINDS}"
        return head  # type: ignore[return-value]

    @property
    def cap(self) -> int:
        """The most entries a capped key may hold."""
        found = _NUMBER.search(self.bound)
        assert self.kind == "cap" and found, f"{self.pattern}: no cap in {self.bound!r}"
        return int(found.group().replace(",", ""))

    @property
    def settings(self) -> list[str]:
        """Settings the bound names (`STATUS_TTL_SECONDS`), in the order named."""
        return [name for name in _CELL_CODE.findall(self.bound) if _SETTING.fullmatch(name)]

    @property
    def archived(self) -> bool:
        """A stream the event archive trims (its retention is the archive's business)."""
        return self.kind == "retention" and "archiv" in self.bound

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile(_to_regex(self.pattern))

    def sample(self) -> str:
        """A key of this family (each placeholder filled in)."""
        return _PART.sub(lambda m: {"{pN}": "{p3}", "*": "x:y"}.get(m.group(), "x1"), self.pattern)


def _to_regex(pattern: str) -> str:
    parts: list[str] = []
    at = 0
    for found in _PART.finditer(pattern):
        parts.append(re.escape(pattern[at : found.start()]))
        parts.append({"{pN}": r"\{p\d+\}", "*": ".+"}.get(found.group(), "[^:]+"))
        at = found.end()
    parts.append(re.escape(pattern[at:]))
    return "".join(parts)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def families(readme: Path = README) -> list[Family]:
    """Every row of the README's key table (the section's first table)."""
    text = readme.read_text()
    assert SECTION in text, f"no {SECTION!r} section in {readme}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = list(itertools.takewhile(lambda line: line.startswith("|"), lines[first:]))
    header = [cell.lower() for cell in _cells(rows[0])]
    assert header == ["key", "redis", "holds", "grows", "bound"], header
    found = []
    for line in rows[2:]:
        key, server, holds, grows, bound = _cells(line)
        pattern = _CELL_CODE.fullmatch(key)
        assert pattern is not None, f"a key pattern is one `code` cell: {key!r}"
        assert server in ("write", "read"), line
        found.append(Family(pattern.group(1), server, holds, grows, bound))  # type: ignore[arg-type]
    return found


def family_of(key: str, table: list[Family]) -> Family | None:
    """The one family the key belongs to (None: none; AssertionError: several)."""
    matching = [f for f in table if f.regex.fullmatch(key)]
    assert len(matching) <= 1, f"{key} matches {[f.pattern for f in matching]}"
    return matching[0] if matching else None
