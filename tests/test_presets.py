"""Presets: saved and recalled by OSC (real UDP) and by key (xdotool on a real X server), kept in a JSON file
beside the config across a real restart of the piece; a corrupt file is one clear line and the piece starts."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import require_tools, wait_until
from pythonosc.udp_client import SimpleUDPClient
from test_control_integration import Listener, free_port

from installation.controls import ControlState
from installation.latent import WalkConfig, Walker
from installation.osc import OscServer
from installation.presets import PRESET_CONTROLS, Presets, preset_key, read_presets

ROOT = Path(__file__).resolve().parents[1]


def test_preset_keys_are_numbers_or_names():
    assert preset_key(3) == preset_key(3.0) == preset_key("3") == preset_key(" 3 ") == "3"
    assert preset_key("Chorus 2") == "Chorus 2"
    for bad in (0, 1000, 2.5, True, None, "", "../etc/passwd", "a/b", "x" * 65, float("nan"), "2nd"):
        with pytest.raises(ValueError, match="preset number 1..999 or a name"):
            preset_key(bad)


def walker() -> Walker:
    return Walker(WalkConfig(mode="loop", seed=7, latent_dim=8, loop_keyframes=4, seconds_per_keyframe=1.0))


def test_a_corrupt_file_is_kept_and_set_aside_on_the_first_save(tmp_path, caplog):
    path = tmp_path / "presets.json"
    path.write_text('{"format": 1, "presets": {"1": {"seed": "x"', encoding="utf-8")
    presets = Presets(path)
    lines = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert len(lines) == 1 and str(path) in lines[0] and "\n" not in lines[0]
    assert presets.corrupt and presets.presets == {}
    controls = ControlState()
    presets.request("save", 2, "keyboard")
    presets.take(walker(), controls)
    assert (tmp_path / "presets.json.corrupt").read_text(encoding="utf-8").startswith('{"format": 1')
    assert read_presets(path)["2"].seed == 7


def test_recall_writes_the_controls_and_returns_the_walk_to_glide_to(tmp_path):
    path, controls, walk = tmp_path / "presets.json", ControlState(), walker()
    for name, value in (("speed", 0.5), ("mode", "drift"), ("captions", False), ("crossfade", 3.0)):
        controls.set(name, value, "osc")
    walk.advance(0.0)
    walk.advance(2.5)  # keyframe 2 of the loop
    presets = Presets(path)
    presets.request("save", "verse", "osc")
    presets.take(walk, controls)
    controls.reset("osc")
    assert Presets(path).presets["verse"].controls == {name: value for name, value in {
        **{name: ControlState().get(name) for name in PRESET_CONTROLS},
        "speed": 0.5, "mode": "drift", "captions": False, "transition_seconds": 3.0}.items()}
    reloaded = Presets(path)
    with pytest.raises(ValueError, match="no preset 'chorus'"):
        reloaded.request("recall", "chorus", "osc")
    reloaded.request("recall", "verse", "osc")
    recalled = reloaded.take(walk, controls)
    assert (recalled.seed, recalled.keyframe) == (7, 2)
    assert controls.get("speed") == 0.5 and controls.get("mode") == "drift" and controls.get("captions") is False
    walk.set_transition_seconds(controls.get("crossfade"))  # what steering does with the recalled crossfade
    walk.jump_to_keyframe(recalled.seed, recalled.keyframe, 10.0)
    assert walk.keyframe == 2 and walk.seed == 7
    assert walk.advance(11.5).transition == pytest.approx(0.5)  # a glide over the preset's 3 s, like any jump


def test_osc_preset_addresses_over_real_udp(tmp_path):
    presets, controls = Presets(tmp_path / "presets.json"), ControlState()
    with OscServer(controls, port=0, handlers=presets.osc_handlers()) as server, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        client = SimpleUDPClient("127.0.0.1", server.port)
        client._sock = sender
        for address, value in (("/masquerade/preset/save", 4.0), ("/masquerade/preset/save", 4.0),
                               ("/masquerade/preset/save", 0.0), ("/masquerade/preset/save", "verse"),
                               ("/masquerade/preset/recall", "nothing saved"), ("/masquerade/preset/save", "a/b")):
            client.send_message(address, value)
        assert wait_until(lambda: server.stats().received == 6)
        stats = server.stats()
    # The repeat of 4.0 within 0.25 s is one press (a cooking CHOP), 0 is a button's release.
    assert stats.repeats == 1 and stats.invalid == 2 and stats.applied == 3
    presets.take(walker(), controls)
    assert sorted(presets.presets) == ["4", "verse"]


# --------------------------------------------------------------------------------------------------
# The real piece: save, restart, recall by OSC and by key


class Piece:
    """run_installation.py in a subprocess with a config file; OSC in on `port`, feedback to a Listener."""

    def __init__(self, config: Path, environment: dict, listener: Listener, port: int):
        self.listener, self.port = listener, port
        listener.messages.clear()
        self.process = subprocess.Popen([sys.executable, "run_installation.py", "--config", str(config)], cwd=ROOT,
                                        env=environment, stderr=subprocess.PIPE, text=True)
        if not wait_until(lambda: "/masquerade/state" in listener.addresses() or self.process.poll() is not None,
                          timeout=150, interval=0.1):
            self.stop()
            raise AssertionError("the piece sent no state within 150 s")
        assert self.process.poll() is None, self.process.communicate()[1]
        self.client = SimpleUDPClient("127.0.0.1", port)

    def send(self, address: str, value) -> None:
        self.client.send_message(address, value)

    def wait_for(self, address: str, value=None, timeout: float = 20.0) -> tuple:
        def found():
            return next((args for got, args in list(self.listener.messages)
                         if got == address and (value is None or args == (value,))), None)
        assert wait_until(lambda: found() is not None, timeout=timeout, interval=0.02), (address, value)
        return found()

    def state(self) -> dict:
        """Every preset control and the walk's seed and keyframe, as the piece reports them to a query."""
        self.listener.messages.clear()
        self.send("/masquerade/query", [])  # a bang: always fires, even right after the last
        values = {name: self.wait_for(f"/masquerade/value/{name}")[0] for name in PRESET_CONTROLS}
        seed, keyframe, *_ = self.wait_for("/masquerade/state")
        return {**values, "seed": seed, "keyframe": keyframe}

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        _, errors = self.process.communicate(timeout=30)
        return errors


def preset_state(preset: dict) -> dict:
    """A stored preset as a query reports it (bools as 0/1)."""
    controls = {name: int(value) if isinstance(value, bool) else value for name, value in preset["controls"].items()}
    return {**controls, "seed": preset["seed"], "keyframe": preset["keyframe"]}


def test_presets_survive_a_restart_and_recall_by_osc_and_by_key(tiny_bundle, tmp_path, xvfb):
    require_tools("xdotool", "xwininfo")
    listener, port = Listener(), free_port()
    config = tmp_path / "show" / "masquerade.toml"
    config.parent.mkdir()
    config.write_text(f"""[model]\nmodel = "{tiny_bundle}"\n[display]\nwindowed = true\nwidth = 320\nheight = 240
[control]\nosc_port = {port}\nfeedback_host = "127.0.0.1"\nfeedback_port = {listener.port}\nfeedback_every = 0.2
[walk]\nseconds_per_keyframe = 30.0\n""", encoding="utf-8")
    environment = xvfb.environment(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    presets_file = config.parent / "presets.json"
    try:
        piece = Piece(config, environment, listener, port)
        for name, value in (("speed", 0.5), ("truncation", 0.7), ("mode", "loop"), ("loop_keyframes", 5),
                            ("crossfade", 1.5), ("captions", 0), ("upscale", 0), ("blend", 0.25), ("seed", 1234)):
            piece.send(f"/masquerade/{name}", value)
        piece.send("/masquerade/next", 1)
        time.sleep(0.3)
        piece.send("/masquerade/next", 1)
        time.sleep(0.3)
        piece.send("/masquerade/preset/save", 3)
        piece.send("/masquerade/preset/save", "chorus")
        piece.wait_for("/masquerade/preset/saved", "chorus")
        saved = piece.state()
        errors = piece.stop()
        assert "preset 3 saved" in errors and "preset chorus saved" in errors

        stored = json.loads(presets_file.read_text(encoding="utf-8"))["presets"]
        assert preset_state(stored["3"]) == saved
        assert (saved["seed"], saved["keyframe"], saved["speed"], saved["mode"]) == (1234, 2, 0.5, "loop")

        piece = Piece(config, environment, listener, port)  # a restart: defaults again, presets from the file
        assert piece.state()["seed"] == 0
        piece.send("/masquerade/preset/recall", 3)
        piece.wait_for("/masquerade/preset/recalled", "3")
        assert piece.state() == saved

        piece.send("/masquerade/speed", 2.0)
        piece.send("/masquerade/seed", 99)
        assert wait_until(lambda: piece.state()["seed"] == 99, timeout=10, interval=0.2)
        info = subprocess.run(["xwininfo", "-display", xvfb.display, "-name", "Masquerade"], capture_output=True,
                              text=True, check=True, timeout=30).stdout
        window = str(int(re.search(r"Window id: (0x[0-9a-f]+)", info).group(1), 16))
        subprocess.run(["xdotool", "mousemove", "--window", window, "20", "20", "key", "ctrl+5", "key", "3"],
                       env=environment, check=True, timeout=30)
        piece.wait_for("/masquerade/preset/recalled", "3")
        assert piece.state() == saved  # the keyboard's recall, after the OSC changes
        errors = piece.stop()
    finally:
        listener.close()
    stored = json.loads(presets_file.read_text(encoding="utf-8"))["presets"]
    assert set(stored) == {"3", "chorus", "5"} and stored["5"]["seed"] == 99 and stored["5"]["controls"]["speed"] == 2
    assert "preset 3 recalled" in errors


def test_a_corrupt_presets_file_is_one_clear_line_and_the_piece_starts(tiny_bundle, tmp_path):
    config = tmp_path / "masquerade.toml"
    config.write_text(f'[model]\nmodel = "{tiny_bundle}"\n[control]\nosc = false\n', encoding="utf-8")
    (tmp_path / "presets.json").write_bytes(b"\x00\xffnot json")
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "SDL_VIDEODRIVER": "dummy"}
    result = subprocess.run([sys.executable, "run_installation.py", "--config", str(config), "--windowed",
                             "--frames", "20"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "presets" in line]
    assert len(lines) == 1 and "ERROR" in lines[0] and str(tmp_path / "presets.json") in lines[0], lines
    assert "Traceback" not in result.stderr and "stopped after 20 frames" in result.stderr
    assert (tmp_path / "presets.json").read_bytes() == b"\x00\xffnot json"  # nothing already saved is lost
