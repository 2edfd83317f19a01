"""Tools built on the library: the command line (``python -m wsx``) and the echo server."""
