"""atheris target: FrameParser and Protocol (with/without permessage-deflate).

    python fuzz/fuzz_frames.py -runs=1000000 -seed=1

See ``harness.run_frames`` for the input format and the oracles, and
``_atheris_main`` for the defaults.
"""

from _atheris_main import main

if __name__ == "__main__":
    main("frames", max_len=4096)
