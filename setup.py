"""Build script for wsx's optional C extensions (the metadata lives in pyproject.toml).

Every Cython module ``wsx/**/*.pyx`` is compiled into the extension module of
the same dotted name (``wsx/_mask.pyx`` -> ``wsx._mask``). So is every
Python module listed in ``COMPILED_PY``, under the name of its ``.pxd``
(``wsx/io/transport.py`` with ``wsx/io/_transport.pxd`` -> ``wsx.io._transport``):
one source, run as Python or compiled (``wsx/_twins.py`` chooses).  The extensions are
optional: if there is no working C compiler, or compilation fails for any
other reason, the build prints a warning and goes on, and wsx runs on its
pure-Python fallback (``wsx._mask_py``).

Where the C code comes from:

* with Cython installed (pyproject.toml's build requirements bring it into
  isolated builds), each ``.pyx`` is translated to ``.c`` and compiled;
* without Cython, the ``.c`` file generated next to the ``.pyx`` is compiled
  when it exists: ``python -m build`` (with Cython) writes it before making
  the sdist, and MANIFEST.in ships it, so an sdist builds its extensions
  without Cython;
* a ``.pyx`` with neither is skipped with a warning.

Set ``WSX_NO_EXTENSIONS`` to a non-empty value other than ``0`` at build time
to skip the extensions entirely.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist
from setuptools.errors import (
    CCompilerError,
    CompileError,
    ExecError,
    LinkError,
    PlatformError,
)

HERE = Path(__file__).resolve().parent
PACKAGE = "wsx"

BUILD_ERRORS = (
    CCompilerError,
    CompileError,
    LinkError,
    ExecError,
    PlatformError,
    OSError,
    ValueError,
)

CYTHON_DIRECTIVES = {
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
}


def _warn(message: str) -> None:
    bar = "*" * 75
    print(
        f"\n{bar}\nWARNING: {message}\n"
        "wsx will be installed without this C extension and will use the\n"
        "pure-Python implementation (correct, but slower).\n"
        f"{bar}\n",
        file=sys.stderr,
    )


def _extensions_disabled() -> bool:
    return os.environ.get("WSX_NO_EXTENSIONS", "") not in ("", "0")


# Python modules compiled as they are (their .pxd gives their classes C fields).
COMPILED_PY = {
    "wsx.core._protocol": "wsx/core/protocol.py",
    "wsx.io._transport": "wsx/io/transport.py",
    "wsx.io._schedule": "wsx/io/schedule.py",
    "wsx.process._dispatcher": "wsx/process/dispatcher.py",
}


def _sources() -> list[tuple[str, str]]:
    """``(module name, source path relative to this file)`` for every compiled module."""
    found = []
    for pyx in sorted((HERE / PACKAGE).rglob("*.pyx")):
        rel = pyx.relative_to(HERE)
        found.append((".".join(rel.with_suffix("").parts), rel.as_posix()))
    found.extend(sorted(COMPILED_PY.items()))
    return found


def _c_file(name: str, source: str) -> str:
    """Where Cython writes the C file of the compiled module ``name``: beside its source."""
    return Path(source).with_suffix(".c").as_posix()


class OptionalBuildExt(build_ext):
    """build_ext that never fails the install: a failed extension is skipped."""

    def build_extensions(self) -> None:
        compiler_type = getattr(self.compiler, "compiler_type", "")
        for ext in self.extensions:
            if compiler_type == "unix":  # gcc and clang
                ext.extra_compile_args = [*ext.extra_compile_args, "-O3"]
            elif compiler_type == "msvc":
                ext.extra_compile_args = [*ext.extra_compile_args, "/O2"]
        super().build_extensions()

    def run(self) -> None:
        try:
            super().run()
        except BUILD_ERRORS as exc:
            _warn(f"could not build the C extensions ({type(exc).__name__}: {exc}).")
            self.extensions = []

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except BUILD_ERRORS as exc:
            _warn(f"failed to compile {ext.name} ({type(exc).__name__}: {exc}).")
            self._failed = [*getattr(self, "_failed", []), ext.name]

    def _built(self) -> list[Extension]:
        failed = set(getattr(self, "_failed", []))
        return [ext for ext in self.extensions if ext.name not in failed]

    def copy_extensions_to_source(self) -> None:
        # Editable installs copy the built modules into the source tree:
        # skip the ones that failed to build instead of failing on a missing file.
        all_exts = self.extensions
        self.extensions = self._built()
        try:
            super().copy_extensions_to_source()
        finally:
            self.extensions = all_exts

    def get_outputs(self) -> list[str]:
        all_exts = self.extensions
        self.extensions = self._built()
        try:
            return list(super().get_outputs())
        finally:
            self.extensions = all_exts

    def get_output_mapping(self) -> dict[str, str]:
        all_exts = self.extensions
        self.extensions = self._built()
        try:
            return dict(super().get_output_mapping())  # type: ignore[misc]
        finally:
            self.extensions = all_exts


class SdistWithC(sdist):
    """sdist that ships the Cython-generated C files, so the sdist builds without Cython."""

    def run(self) -> None:
        missing = [src for name, src in _sources() if not (HERE / _c_file(name, src)).exists()]
        if missing:
            _warn(
                f"no generated C file for {', '.join(missing)} (Cython is not installed): "
                "the sdist will need Cython to build these extensions."
            )
        super().run()


def _cythonize(sources: list[tuple[str, str]]) -> list[Any] | None:
    """Translate each .pyx with Cython; None when Cython is not installed."""
    try:
        from Cython.Build import cythonize
        from Cython.Compiler.Errors import CompileError as CythonError
    except ImportError:
        return None
    extensions: list[Any] = []
    for name, pyx in sources:
        # A Python module compiled as it is keeps Python's semantics (negative
        # indices, bounds checks); its annotations document, they type nothing.
        directives: dict[str, Any] = (
            {"annotation_typing": False} if pyx.endswith(".py") else dict(CYTHON_DIRECTIVES))
        try:
            extensions.extend(
                cythonize(
                    [Extension(name, [pyx])],
                    language_level=3,
                    compiler_directives=directives,
                    quiet=True,
                )
            )
        except (CythonError, OSError, ValueError) as exc:
            _warn(f"Cython could not translate {pyx} ({type(exc).__name__}: {exc}).")
    return extensions


# Modules that only build on some platforms (the others use the Python twin).
PLATFORM_ONLY = {
    "wsx.io._handoff": ("POSIX sockets", lambda: os.name == "posix"),
    "wsx.io._epoll": ("epoll", lambda: sys.platform.startswith("linux")),
    "wsx.process._reader": ("POSIX sockets", lambda: os.name == "posix"),
    "wsx.io._syscalls": ("POSIX sockets", lambda: os.name == "posix"),
}


def _for_this_platform(sources: list[tuple[str, str]]) -> list[tuple[str, str]]:
    kept = []
    for name, pyx in sources:
        need = PLATFORM_ONLY.get(name)
        if need is not None and not need[1]():
            print(f"{name} needs {need[0]}: not built on {sys.platform} "
                  "(its pure-Python twin is used).", file=sys.stderr)
            continue
        kept.append((name, pyx))
    return kept


def _extensions() -> list[Any]:
    if _extensions_disabled():
        print("WSX_NO_EXTENSIONS is set: not building the C extensions.", file=sys.stderr)
        return []
    sources = _for_this_platform(_sources())
    extensions = _cythonize(sources)
    if extensions is not None:
        return extensions
    extensions = []
    for name, pyx in sources:
        c_file = _c_file(name, pyx)
        if (HERE / c_file).exists():  # e.g. an sdist with the generated C file
            extensions.append(Extension(name, [c_file]))
        else:
            _warn(f"Cython is not installed and there is no {c_file}: {pyx} cannot be compiled.")
    return extensions


setup(
    ext_modules=_extensions(),
    cmdclass={"build_ext": OptionalBuildExt, "sdist": SdistWithC},
)
