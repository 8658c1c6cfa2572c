#!/usr/bin/env python3
"""Masquerade: run the installation (fullscreen latent walk) on a model bundle."""

import sys

if __name__ == "__main__":
    print("error: the installation runtime is not built yet (see issue 4); train with `python -m training`",
          file=sys.stderr)
    sys.exit(2)
