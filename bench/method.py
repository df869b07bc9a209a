"""The prose of docs/benchmarks.md (bench/method.md): how each figure is measured, what was changed and
with what effect, how item 6 seeds its stores, how to reproduce."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any


@cache
def sections() -> dict[str, str]:
    text = (Path(__file__).with_name("method.md")).read_text()
    found = re.split(r"^<!-- section: (\w+) -->\n", text, flags=re.MULTILINE)
    return {found[i]: found[i + 1].strip() for i in range(1, len(found), 2)}


def method() -> str:
    return sections()["method"]


def reproduce() -> str:
    return sections()["reproduce"]


def closing_note(results: dict[str, Any]) -> str:
    return sections()["changes"] + "\n\n" + sections()["subjects"]
