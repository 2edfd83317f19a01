"""Shared entry point of the atheris (libFuzzer, coverage-guided) targets.

``fuzz_frames.py`` and ``fuzz_handshake.py`` call :func:`main`. Without a
corpus directory on the command line, ``fuzz/corpus/<target>/`` is used and
filled with the harness's seed inputs when empty. Defaults added unless given:
``-max_len``, ``-timeout=5`` (seconds per input: a hang is a finding),
``-rss_limit_mb=2048``, ``-artifact_prefix=fuzz/findings/`` and
``-dict=fuzz/<target>.dict`` when that file exists. Every other
libFuzzer flag passes through (``-runs=1000000``, ``-seed=1``...). libFuzzer
stops at the first finding (``mutate.py`` goes on); its ``-fork`` mode does
not work here: it re-executes ``argv[0]``, a Python script.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(target: str, max_len: int) -> None:
    import atheris  # type: ignore[import-untyped]

    sys.path.insert(0, str(HERE))
    with atheris.instrument_imports(include=["wsx", "harness"]):
        import harness

    run: Callable[[bytes], object] = getattr(harness, f"run_{target}")
    seeds: Callable[[], list[bytes]] = {"frames": harness.frame_seeds,
                                        "handshake": harness.handshake_seeds}[target]
    args = list(sys.argv)
    flags = [a for a in args[1:] if a.startswith("-")]
    dirs = [a for a in args[1:] if not a.startswith("-")]
    if not dirs:
        corpus = HERE / "corpus" / target
        args.append(str(corpus))
        dirs = [str(corpus)]
    first = Path(dirs[0])
    first.mkdir(parents=True, exist_ok=True)
    if not any(first.iterdir()):
        for blob in seeds():
            (first / hashlib.sha1(blob).hexdigest()).write_bytes(blob)
    defaults = {"-max_len": str(max_len), "-timeout": "5", "-rss_limit_mb": "2048",
                "-artifact_prefix": str(HERE / "findings") + os.sep}
    dictionary = HERE / f"{target}.dict"
    if dictionary.exists():
        defaults["-dict"] = str(dictionary)
    for name, value in defaults.items():
        if not any(f.startswith(name + "=") for f in flags):
            args.insert(1, f"{name}={value}")
    (HERE / "findings").mkdir(exist_ok=True)

    def test_one_input(data: bytes) -> None:
        run(data)

    atheris.Setup(args, test_one_input)
    atheris.Fuzz()
