"""`python -m installation.osc_send`: the documented command for sending one OSC message.

The code lives in `installation.osc.send`; this module keeps the command and its old import path.
"""

import sys

from installation.osc.send import TYPES, build_message, main, typed_value

__all__ = ["TYPES", "build_message", "main", "typed_value"]

if __name__ == "__main__":
    sys.exit(main())
