"""Run the official AsyncAPI parser (@asyncapi/parser, infra/node) over AsyncAPI documents.

`make node-deps` installs it (`make test` does that first). Without Node.js or the installed parser the
tests that use this fail with what to do: they never skip, so a CI without npm cannot pass them unnoticed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "infra" / "node"
SCRIPT = NODE_DIR / "asyncapi-validate.mjs"
PARSER = NODE_DIR / "node_modules" / "@asyncapi" / "parser" / "package.json"


def parse(paths: list[Path]) -> list[dict]:
    """The parser's verdict per document: {file, version, errors, warnings, infos, hints}."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found: the AsyncAPI documents are checked with the official parser, which needs "
                    "Node.js 18 or newer (then `make node-deps`)", pytrace=False)
    if not PARSER.exists():
        pytest.fail(f"@asyncapi/parser is not installed in {NODE_DIR.relative_to(ROOT)}: run `make node-deps`",
                    pytrace=False)
    installed = json.loads(PARSER.read_text())["version"]
    pinned = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["@asyncapi/parser"]
    assert installed == pinned, f"@asyncapi/parser {installed} installed, {pinned} pinned: run `make node-deps`"
    result = subprocess.run([node, str(SCRIPT), *map(str, paths)], capture_output=True, text=True, timeout=120,
                            cwd=NODE_DIR)
    assert result.returncode in (0, 1), f"the parser did not run ({result.returncode}): {result.stderr[-2000:]}"
    verdicts = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [v["file"] for v in verdicts] == [str(p) for p in paths], result.stderr[-2000:]
    failed = any(v["errors"] or v["warnings"] for v in verdicts)
    assert result.returncode == (1 if failed else 0), (result.returncode, verdicts)
    return verdicts


def complaints(verdicts: list[dict]) -> dict[str, list[dict]]:
    """Per document, every error, warning and info the parser gave (hints are style advice, not kept)."""
    return {v["file"]: [*v["errors"], *v["warnings"], *v["infos"]] for v in verdicts
            if v["errors"] or v["warnings"] or v["infos"]}
