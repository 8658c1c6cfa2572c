"""OSC control input (one background thread writing to the ControlState) and OSC feedback output.

Messages (prefix "/masquerade" by default, see docs/osc.md):
    /masquerade/<name> value          one parameter per address (TouchDesigner OSC Out CHOP channels)
    /masquerade name value name value  several parameters in one message (OSC Out DAT sendOSC)
    /masquerade/preset/save N|name     addresses given as handlers (presets), see OscServer

Modules: `parser` (datagrams into messages, pure), `allowlist` (which senders may control the piece),
`server` (the receive thread), `feedback` (state sent back), `send` (the command-line sender, run as
`python -m installation.osc_send`), `defaults` (host, ports, prefix). `RateLimitedLog` lives in
`installation.ratelimit` and is re-exported here for older imports.
"""

from installation.osc.allowlist import Network, parse_allowlist, plain_address, plain_network
from installation.osc.defaults import DEFAULT_FEEDBACK_PORT, DEFAULT_HOST, DEFAULT_PORT, DEFAULT_PREFIX
from installation.osc.feedback import OscFeedback
from installation.osc.parser import (
    MAX_ARRAY_DEPTH,
    MAX_BUNDLE_DEPTH,
    OscMessage,
    OscParseError,
    parse_message,
    parse_packet,
)
from installation.osc.server import (
    MAX_DATAGRAM,
    SOURCE,
    OscPortInUseError,
    OscServer,
    OscStartError,
    OscStats,
)
from installation.ratelimit import RateLimitedLog

__all__ = [
    "DEFAULT_FEEDBACK_PORT",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_PREFIX",
    "MAX_ARRAY_DEPTH",
    "MAX_BUNDLE_DEPTH",
    "MAX_DATAGRAM",
    "SOURCE",
    "Network",
    "OscFeedback",
    "OscMessage",
    "OscParseError",
    "OscPortInUseError",
    "OscServer",
    "OscStartError",
    "OscStats",
    "RateLimitedLog",
    "parse_allowlist",
    "parse_message",
    "parse_packet",
    "plain_address",
    "plain_network",
]
