"""Build script for wsx's optional C extension (the metadata lives in pyproject.toml).

``wsx/_mask.pyx`` is compiled with Cython into ``wsx._mask``.  The extension
is optional: if Cython is missing, there is no working C compiler, or
compilation fails for any other reason, the build prints a warning and goes
on, and wsx runs on its pure-Python fallback (``wsx._mask_py``).

Set ``WSX_NO_EXTENSIONS`` to a non-empty value other than ``0`` at build time
to skip the extension entirely.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import (
    CCompilerError,
    CompileError,
    ExecError,
    LinkError,
    PlatformError,
)

HERE = Path(__file__).resolve().parent
PYX = "wsx/_mask.pyx"
C_FILE = "wsx/_mask.c"

BUILD_ERRORS = (
    CCompilerError,
    CompileError,
    LinkError,
    ExecError,
    PlatformError,
    OSError,
    ValueError,
)


def _warn(message: str) -> None:
    bar = "*" * 75
    print(
        f"\n{bar}\nWARNING: {message}\n"
        "wsx will be installed without its C extension and will use the\n"
        "pure-Python implementation (correct, but slower).\n"
        f"{bar}\n",
        file=sys.stderr,
    )


def _extensions_disabled() -> bool:
    return os.environ.get("WSX_NO_EXTENSIONS", "") not in ("", "0")


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
            _warn(f"could not build the C extension ({type(exc).__name__}: {exc}).")
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


def _extensions() -> list[Any]:
    if _extensions_disabled():
        print("WSX_NO_EXTENSIONS is set: not building the C extension.", file=sys.stderr)
        return []
    try:
        from Cython.Build import cythonize
        from Cython.Compiler.Errors import CompileError as CythonError
    except ImportError:
        if (HERE / C_FILE).exists():  # e.g. an sdist with the generated C file
            return [Extension("wsx._mask", [C_FILE])]
        _warn("Cython is not installed, so wsx/_mask.pyx cannot be compiled.")
        return []
    try:
        return list(
            cythonize(
                [Extension("wsx._mask", [PYX])],
                language_level=3,
                compiler_directives={
                    "boundscheck": False,
                    "wraparound": False,
                    "cdivision": True,
                },
                quiet=True,
            )
        )
    except (CythonError, OSError, ValueError) as exc:
        _warn(f"Cython could not translate {PYX} ({type(exc).__name__}: {exc}).")
        return []


setup(
    ext_modules=_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
)
