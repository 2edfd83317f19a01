"""The static types of wsx: ``mypy --strict`` on typed callback modules.

``tests/typing/pass/*.py`` must pass without an error. In
``tests/typing/fail/*.py`` every line marked ``# E: <fragment>`` must have an
error whose message contains the fragment, and no other line may have one.
mypy runs in-process, once per folder, on the wsx it imports (the installed
one in CI, whose wheel ships ``py.typed``), with a temporary cache.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import pytest

import wsx
from wsx.process.callbacks import resolve_module

TYPING = Path(__file__).resolve().parent / "typing"
MARK = re.compile(r"#\s*E:\s*(?P<fragment>.+?)\s*$")
ERROR = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: (?P<message>.*)$")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache for both runs: the second one reuses what the first learned of wsx."""
    yield tmp_path_factory.mktemp("mypy-cache")


def run_mypy(folder: Path, cache_dir: Path) -> tuple[int, str, dict[tuple[str, int], list[str]]]:
    """mypy --strict on ``folder``: its exit status, its output, and its errors by (file, line)."""
    mypy_api = pytest.importorskip("mypy.api")
    out, err, status = mypy_api.run([
        "--strict",
        "--config-file=",  # no project configuration: these flags only
        "--python-version", f"{sys.version_info[0]}.{sys.version_info[1]}",
        "--cache-dir", str(cache_dir),
        "--no-error-summary", "--no-pretty", "--show-absolute-path",
        "--hide-error-context", "--no-color-output",
        str(folder),
    ])
    assert status in (0, 1), (status, out, err)  # 2: mypy itself failed
    errors: dict[tuple[str, int], list[str]] = {}
    for line in out.splitlines():
        match = ERROR.match(line)
        if match:
            key = (Path(match["path"]).name, int(match["line"]))
            errors.setdefault(key, []).append(match["message"])
    return status, out + err, errors


def expected_errors(folder: Path) -> dict[tuple[str, int], str]:
    """The ``# E: <fragment>`` marks of the files in ``folder``, by (file, line)."""
    marks: dict[tuple[str, int], str] = {}
    for path in sorted(folder.glob("*.py")):
        for number, text in enumerate(path.read_text().splitlines(), 1):
            match = MARK.search(text)
            if match:
                marks[(path.name, number)] = match["fragment"]
    return marks


def test_the_typing_folders_are_there() -> None:
    assert sorted(p.name for p in (TYPING / "pass").glob("*.py")), TYPING
    assert sorted(p.name for p in (TYPING / "fail").glob("*.py")), TYPING
    # Not collected as tests (their names do not start with test_).
    assert not list(TYPING.rglob("test_*.py"))


def test_typed_modules_pass_mypy_strict(cache_dir: Path) -> None:
    status, output, errors = run_mypy(TYPING / "pass", cache_dir)
    assert not errors, output
    assert status == 0, output


def test_wrong_results_states_and_frames_fail_mypy_strict(cache_dir: Path) -> None:
    marks = expected_errors(TYPING / "fail")
    assert len(marks) >= 20, marks
    status, output, errors = run_mypy(TYPING / "fail", cache_dir)
    assert status == 1, output
    missing = {
        f"{name}:{line}: expected an error with {fragment!r}, got {errors.get((name, line))}"
        for (name, line), fragment in marks.items()
        if not any(fragment in message for message in errors.get((name, line), []))
    }
    unexpected = {
        f"{name}:{line}: {messages}"
        for (name, line), messages in errors.items() if (name, line) not in marks
    }
    assert not missing, "\n".join(sorted(missing)) + "\n\n" + output
    assert not unexpected, "\n".join(sorted(unexpected)) + "\n\n" + output


# ------------------------------------------------------------------ run time
T = TypeVar("T")


class Counter(wsx.WebSocket[int]):
    def handle_frame(self, frame: wsx.DataFrame, state: int) -> wsx.FrameResult[int]:
        return ("ok", state + 1)


class Generic_(wsx.WebSocket[T]):
    """A callback module generic itself, started as ``Generic_[int]``."""


def test_the_generic_base_and_the_aliases_work_at_run_time() -> None:
    assert Counter.__orig_bases__ == (wsx.WebSocket[int],)  # type: ignore[attr-defined]
    assert issubclass(Counter, wsx.WebSocket)
    ok, reply, close, close_code = get_args(wsx.FrameResult[int])
    assert ok == tuple[Literal["ok"], int]
    assert close_code == tuple[Literal["close"], tuple[int, str], int]
    assert get_args(wsx.ConnectResult[str]) == (Literal["ok"], str)
    assert tuple[Literal["reconnect"], wsx.Conn | str, bytes] in get_args(wsx.DisconnectResult[bytes])
    assert get_args(wsx.CodeChangeResult[int])[1] == tuple[Literal["error"], Any]
    assert tuple[Literal["text"], str] in get_args(wsx.Frame)
    for name in ("Frame", "DataFrame", "PingFrame", "PongFrame", "OutFrame", "CloseFrame",
                 "FrameResult", "ConnectResult", "DisconnectResult", "CodeChangeResult",
                 "CallbackModule"):
        assert name in wsx.__all__ and getattr(wsx, name) is not None


def test_typed_modules_resolve_as_before() -> None:
    assert type(resolve_module(Counter)) is Counter
    assert type(resolve_module(wsx.WebSocket)) is wsx.WebSocket
    assert type(resolve_module(Generic_[int])) is Generic_  # a subscripted class: its instance
    counter = Counter()
    assert resolve_module(counter) is counter
    assert counter.handle_frame(("text", "x"), 1) == ("ok", 2)
    assert counter.handle_ping("ping", 0) == ("reply", "pong", 0)
