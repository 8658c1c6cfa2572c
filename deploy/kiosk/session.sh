#!/bin/sh
# Runs inside the kiosk session (as cage's client program, or from xinitrc): hands the session's display
# to the user's systemd manager, starts masquerade-user.service and stays until an operator stops it.
# Leaving ends the session (cage or X exits). Without a user manager it runs the piece itself.
PIECE="/opt/masquerade/.venv/bin/python /opt/masquerade/run_installation.py --config /etc/masquerade/piece.toml"
UNIT=masquerade-user.service

if systemctl --user show-environment >/dev/null 2>&1; then
    systemctl --user import-environment DISPLAY XAUTHORITY WAYLAND_DISPLAY XDG_SESSION_TYPE
    if [ -n "$WAYLAND_DISPLAY" ]; then
        systemctl --user set-environment SDL_VIDEODRIVER=wayland
    else
        systemctl --user set-environment SDL_VIDEODRIVER=x11
    fi
    # Returns once the piece has sent READY=1 (or failed to start; systemd then retries by itself).
    systemctl --user start "$UNIT"
    # Stay while the piece runs or waits to be restarted; "systemctl --user stop" ends the session.
    while sleep 5; do
        case "$(systemctl --user show -p ActiveState --value "$UNIT")" in
            inactive|failed) break ;;
        esac
    done
    systemctl --user unset-environment DISPLAY XAUTHORITY WAYLAND_DISPLAY
    exit 0
fi

# No user manager (a minimal system without pam_systemd): restart the piece here after any exit.
# Status file in the user's runtime directory, as the user unit does.
if [ -n "$WAYLAND_DISPLAY" ]; then export SDL_VIDEODRIVER=wayland; else export SDL_VIDEODRIVER=x11; fi
STATUS="${XDG_RUNTIME_DIR:-/tmp}/masquerade/status.json"
mkdir -p "$(dirname "$STATUS")"
while :; do
    # shellcheck disable=SC2086 # PIECE is a command line
    $PIECE --status-file "$STATUS"
    sleep 3
done
