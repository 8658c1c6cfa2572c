#!/usr/bin/env python3
"""Masquerade: run the installation (a fullscreen latent walk) on a model bundle. `--help` lists the settings."""

import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if __name__ == "__main__":
    try:
        from installation.app import main

        code = main()
    except KeyboardInterrupt:  # Ctrl-C before the piece's own handlers are installed (while importing)
        print("interrupted while starting; nothing done", file=sys.stderr)
        code = 130
    # By now the piece has closed its display, stopped its threads and written its files. TensorFlow's
    # interpreter teardown can take a second more, which a kiosk's SIGTERM budget cannot spare.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
