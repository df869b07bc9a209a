"""The prose of docs/benchmarks.md: how each figure is measured, what was changed, how to reproduce."""

from __future__ import annotations

from typing import Any

METHOD = """## Method

(to be written)"""

REPRODUCE = """## Reproduce

```sh
make bench                      # full run: var/bench/results.json, var/bench/benchmarks.md, .svg
.venv/bin/python -m bench --quick
```"""


def closing_note(results: dict[str, Any]) -> str:
    return ""
