"""The README's examples run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_the_two_commands() -> None:
    text = README.read_text()
    assert ".venv/bin/hookruntime serve" in text
    assert ".venv/bin/pytest" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert ".venv/bin/pip install --quiet -e '.[test]'" in ci and ".venv/bin/pytest" in ci


@pytest.mark.parametrize("block", python_blocks())
def test_python_examples_run(block: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block)
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
