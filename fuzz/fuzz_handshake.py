"""atheris target: the upgrade response parser, extension negotiation, leftover bytes.

    python fuzz/fuzz_handshake.py -runs=1000000 -seed=1

See ``harness.run_handshake`` for the input format and the oracles, and
``_atheris_main`` for the defaults.
"""

from _atheris_main import main

if __name__ == "__main__":
    main("handshake", max_len=16384)
