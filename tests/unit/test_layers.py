"""The code's structure is checked, not only described: imports point one way through shared/ (contracts →
domain → unit of work → messaging → capabilities → bootstrap → runtime), services import neither each other nor
a driver, and the product imports none of its tools. The contracts are in pyproject.toml ([tool.importlinter])."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lint(config: Path | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    program = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(" + (
        f"config_filename={str(config)!r}, " if config else "") + "no_cache=True, no_logo=True))"
    return subprocess.run([sys.executable, "-c", program], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_every_import_contract_of_the_project_is_kept():
    result = lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_import_against_the_layers_breaks_the_build(tmp_path):
    """The same contract on a copy of shared/ in which the messaging core imports a capability (the cycle this
    stack was made to end) is reported broken: the check can fail."""
    import shutil

    shutil.copytree(ROOT / "shared", tmp_path / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    pipeline = tmp_path / "shared" / "messaging" / "pipeline.py"
    pipeline.write_text(pipeline.read_text() + "\nfrom shared.privacy.subject_data import SubjectRequestResponder\n")
    config = tmp_path / "layers.toml"
    stack = (ROOT / "pyproject.toml").read_text().split("[[tool.importlinter.contracts]]")[1]
    config.write_text(textwrap.dedent("""
        [tool.importlinter]
        root_packages = ["shared"]
        [[tool.importlinter.contracts]]
        """) + stack)
    result = lint(config, cwd=tmp_path)
    assert result.returncode != 0
    assert "shared.messaging.pipeline -> shared.privacy.subject_data" in result.stdout
