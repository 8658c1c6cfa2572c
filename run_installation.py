#!/usr/bin/env python3
"""Masquerade: run the installation (a fullscreen latent walk) on a model bundle. `--help` lists the settings."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if __name__ == "__main__":
    from installation.app import main

    sys.exit(main())
