"""`python -m installation.video ...`: the same command as `run_installation.py export ...`."""

import sys

from installation.video.cli import main

sys.exit(main())
