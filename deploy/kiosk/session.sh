#!/bin/sh
# Runs inside the kiosk session (as cage's client program, or from xinitrc): hands the session's display
# to the user's systemd manager, starts masquerade-user.service and stays until an operator stops it.
# Leaving ends the session (cage or X exits). Without a user manager it runs the piece itself.
#
# The piece shows through X11: under xinit that is the X server itself, under cage it is cage's
# XWayland (cage sets DISPLAY for its client when XWayland is installed: apt install xwayland). pygame's
# SDL can only show a window on native Wayland through OpenGL, and Mesa's OpenGL crashes beside
# TensorFlow in the same process; X11 has a plain framebuffer (deploy/kiosk-session.md).
PIECE="/opt/masquerade/.venv/bin/python /opt/masquerade/run_installation.py --config /etc/masquerade/piece.toml"
UNIT=masquerade-user.service

if [ -z "$DISPLAY" ]; then
    echo "masquerade: no DISPLAY in the kiosk session; under cage install xwayland (apt install xwayland)" \
        | systemd-cat -t masquerade -p alert 2>/dev/null || echo "masquerade: no DISPLAY (install xwayland)" >&2
fi
export SDL_VIDEODRIVER=x11

if systemctl --user show-environment >/dev/null 2>&1; then
    systemctl --user import-environment DISPLAY XAUTHORITY WAYLAND_DISPLAY XDG_SESSION_TYPE SDL_VIDEODRIVER
    # Returns once the piece has sent READY=1 (or failed to start; systemd then retries by itself).
    systemctl --user start "$UNIT"
    # Stay while the piece runs or waits to be restarted; "systemctl --user stop" ends the session.
    while sleep 5; do
        case "$(systemctl --user show -p ActiveState --value "$UNIT")" in
            inactive) break ;;
            # Gave up after its start limit (masquerade-failed@ wrote why to the journal): keep the session
            # rather than end it, or getty would log in again and the whole loop would restart every second.
            failed) sleep infinity ;;
        esac
    done
    systemctl --user unset-environment DISPLAY XAUTHORITY WAYLAND_DISPLAY SDL_VIDEODRIVER
    exit 0
fi

# No user manager (a minimal system without pam_systemd): restart the piece here after any exit. Exit
# status 2 (no display, a bad setting, a broken bundle: the piece's `error:` line says which) will not heal
# by itself in seconds: wait longer each time, up to 5 minutes. Status file in the user's runtime
# directory, as the user unit does.
STATUS="${XDG_RUNTIME_DIR:-/tmp}/masquerade/status.json"
mkdir -p "$(dirname "$STATUS")"
pause=5
while :; do
    # shellcheck disable=SC2086 # PIECE is a command line
    $PIECE --status-file "$STATUS"
    status=$?
    if [ "$status" -eq 2 ]; then
        logger -t masquerade -p user.alert "the piece refused to start (exit 2, see its error line); retrying in ${pause} s"
        sleep "$pause"
        pause=$((pause * 2)); [ "$pause" -gt 300 ] && pause=300
    else
        pause=5
        sleep 5
    fi
done
