"""The README's two commands are the ones CI and developers actually run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", (ROOT / "README.md").read_text(), re.DOTALL)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = next(b for b in _shell_blocks() if "pytest" in b)
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_the_readme_start_command_runs_the_dev_launcher() -> None:
    start = next(b for b in _shell_blocks() if "app.dev" in b)
    assert start.startswith("python3 -m venv .venv")
    assert (ROOT / "app" / "dev.py").exists()
