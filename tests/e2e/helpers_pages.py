"""Helpers for the tests that walk every page: the screen sizes, the pages each role sees."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    name: str
    width: int
    height: int


DESKTOP = Size("desktop", 1280, 800)
PHONE = Size("phone", 390, 844)
SIZES = (DESKTOP, PHONE)
