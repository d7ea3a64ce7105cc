"""Constants declared in Python reach a Lua script as locals on its first line."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.kernel.scripts import load_script

HEADER = "-- x.lua: a script.\n-- Constants (from Python): NAMES, LIMIT\nreturn 1\n"


def _module(tmp_path: Path, source: str) -> str:
    (tmp_path / "x.lua").write_text(source)
    return str(tmp_path / "module.py")


def test_the_declared_constants_become_locals_on_the_first_line(tmp_path: Path) -> None:
    script = load_script(_module(tmp_path, HEADER), "x.lua", NAMES={"a": "b", "c": "it's"}, LIMIT=5)

    first, *rest = script.source.split("\n")
    assert first == ("local NAMES, LIMIT = {['a'] = 'b', ['c'] = 'it\\39s'}, 5 -- x.lua: a script.")
    assert rest == HEADER.split("\n")[1:]  # every line keeps its number
    assert script.path == tmp_path / "x.lua"


def test_a_set_is_a_table_of_its_members_and_odd_bytes_are_escaped(tmp_path: Path) -> None:
    source = "-- Constants (from Python): FINAL, TEXT\nreturn 1\n"
    script = load_script(
        _module(tmp_path, source), "x.lua", FINAL=frozenset({"b", "a"}), TEXT="é\n\\"
    )

    assert script.source.startswith(
        "local FINAL, TEXT = {['a'] = true, ['b'] = true}, '\\195\\169\\10\\92' -- Constants"
    )


@pytest.mark.parametrize(
    "given",
    [{}, {"NAMES": {}}, {"NAMES": {}, "LIMIT": 1, "EXTRA": 2}],
    ids=["none", "one-missing", "one-extra"],
)
def test_constants_other_than_the_declared_ones_are_refused(
    tmp_path: Path, given: dict[str, int | dict[str, str]]
) -> None:
    with pytest.raises(ValueError, match="declares constants"):
        load_script(_module(tmp_path, HEADER), "x.lua", **given)


def test_a_script_declaring_none_is_sent_as_it_is(tmp_path: Path) -> None:
    script = load_script(_module(tmp_path, "return 1\n"), "x.lua")

    assert script.source == "return 1\n"
