#!/bin/sh
# Start the Wayland kiosk: cage shows one fullscreen client (the piece) and nothing else.
# Called from the kiosk user's ~/.bash_profile on tty1 (deploy/kiosk/bash_profile).
#   -d  no client-side decorations      -s  allow Ctrl+Alt+F<n> to a text console (maintenance)
# The piece shows through cage's XWayland (session.sh): cage starts it when the xwayland package is
# installed and hands its DISPLAY to session.sh. Without it the piece exits with a one-line error.
# Keyboard layout for Ctrl+Shift+Q etc.: XKB_DEFAULT_LAYOUT (e.g. export XKB_DEFAULT_LAYOUT=de).
# Software rendering for cage itself on machines with no usable GPU driver:
#   export WLR_RENDERER=pixman
# If the mouse pointer shows over the piece with no mouse attached, also:
#   export WLR_NO_HARDWARE_CURSORS=1
export XDG_SESSION_TYPE=wayland
exec cage -d -s -- /opt/masquerade/deploy/kiosk/session.sh
