"""Where OSC goes unless configured: shared by the server, the feedback sender and the command-line sender."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000
DEFAULT_FEEDBACK_PORT = 9001
DEFAULT_PREFIX = "/masquerade"
