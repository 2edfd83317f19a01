"""Every public name has an autodoc entry in docs/api/ (read as text: no Sphinx needed).

The API pages list the names one directive each (``.. autofunction::
wsx.start_link``...), so that a name added to ``wsx.__all__``,
``wsx.aio.__all__`` or ``wsx.sys`` cannot go undocumented. The site itself
is built by ``tox -e docs``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import wsx
import wsx.aio
import wsx.sys
import wsx.telemetry

API = Path(__file__).resolve().parent.parent / "docs" / "api"

# ".. autofunction:: wsx.start_link", ".. autoclass:: wsx.Client()",
# ".. automodule:: wsx.sys", and the entries of an autosummary block.
DIRECTIVE = re.compile(r"^\s*\.\. auto(?:module|class|exception|function|data|attribute|method)"
                       r"::\s*([\w.]+)", re.M)
AUTOSUMMARY = re.compile(r"^\s*\.\. autosummary::\n((?:[ \t]+.*\n|[ \t]*\n)*)", re.M)


def documented() -> set[str]:
    names: set[str] = set()
    for page in sorted(API.glob("*.md")):
        text = page.read_text()
        names.update(DIRECTIVE.findall(text))
        for block in AUTOSUMMARY.findall(text):
            names.update(line.strip() for line in block.splitlines()
                         if line.strip() and not line.strip().startswith(":"))
    return names


def public(module: types.ModuleType, names: list[str] | None = None) -> list[str]:
    return [f"{module.__name__}.{name}" for name in (names or module.__all__)]


def sys_functions() -> list[str]:
    return [name for name, value in vars(wsx.sys).items()
            if not name.startswith("_") and isinstance(value, types.FunctionType)
            and value.__module__ == "wsx.sys"]


def test_the_api_pages_exist() -> None:
    assert (API / "index.md").is_file()
    assert len(documented()) > 50


@pytest.mark.parametrize("name", public(wsx) + public(wsx.aio) + public(wsx.telemetry)
                         + public(wsx.sys, sys_functions()))
def test_every_public_name_has_an_autodoc_entry(name: str) -> None:
    assert name in documented(), f"{name} is public but no page of docs/api/ documents it"


def test_the_sys_functions_are_all_exported() -> None:
    assert sorted(sys_functions()) == sorted(wsx.sys.__all__)


def test_the_testing_aids_are_documented() -> None:
    names = documented()
    assert {"wsx.testing", "wsx.testing.plugin"} <= names


def test_the_testing_guide_s_examples_pass(tmp_path: Path) -> None:
    # The guide's code blocks, as a user's test file, run by pytest with the
    # fixtures of the installed plugin.
    guide = (API.parent / "guides" / "testing.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", guide, re.S)
    code = "\n".join(b for b in blocks if "def test_" in b or "class " in b)
    assert code.count("def test_") >= 4
    test = tmp_path / "test_guide.py"
    test.write_text("import wsx\n" + code)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(test)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
