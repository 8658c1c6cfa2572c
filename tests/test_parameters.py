"""The one parameter table: the dataclass, the flags, the TOML keys, the control registry, the remote, the keys and
the docs all agree with it; renamed parameters keep their old names; one range, one-line errors."""

import argparse
import dataclasses
import json
import logging
import math
import re
from pathlib import Path

import pytest
from conftest import wait_until
from pythonosc.udp_client import SimpleUDPClient

from installation import config as runtime_config
from installation import parameters
from installation.app import TOGGLE_KEYS, TRIGGER_KEYS, initial_controls, main
from installation.config import RuntimeConfig
from installation.controls import PARAMETERS, SEED_MAX, ControlState
from installation.latent import EASINGS, MAX_SEED, MODES
from installation.osc import OscServer
from installation.parameters import BY_NAME, SETTINGS, TABLE, check, osc_reference
from installation.presets import PRESET_CONTROLS, Preset, read_presets
from installation.remote import CONTROLS as REMOTE_CONTROLS

ROOT = Path(__file__).resolve().parents[1]
SPECIAL_TEXT = {"webcam_settings"}  # a [webcam] table in the file, not a key


@pytest.fixture(autouse=True)
def fresh_deprecation_log(monkeypatch):
    """Each old name logs once per process; every test starts as a fresh process would."""
    monkeypatch.setattr(parameters, "_warned", set())


def other_value(parameter):
    """A valid value that is not the default, to see it travel through each surface."""
    if parameter.kind == "bool":
        return not parameter.default
    if parameter.kind == "choice":
        return next(choice for choice in parameter.choices if choice != parameter.default)
    if parameter.kind in ("int", "float"):
        return parameter.max if parameter.default != parameter.max else parameter.min
    return None


def flag_words(parameter, value) -> list[str]:
    if parameter.kind == "bool":
        return [parameter.flag if value else "--no-" + parameter.flag[2:]]
    return [parameter.flag, str(value)]


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser()
    runtime_config.add_arguments(made)
    return made


@pytest.mark.parametrize("parameter", TABLE, ids=lambda parameter: parameter.name)
def test_every_parameter_agrees_across_dataclass_flags_toml_and_controls(parameter, tmp_path):
    assert parameter.doc and (parameter.section is not None or parameter.live), "a parameter nobody can set"
    fields = {spec.name: spec for spec in dataclasses.fields(RuntimeConfig)}
    value = other_value(parameter)
    if parameter.section is None:
        assert parameter.name not in fields
    else:
        spec = fields[parameter.name]
        assert spec.default == parameter.default and spec.metadata["section"] == parameter.section
        assert getattr(RuntimeConfig(), parameter.name) == parameter.default
        help_line = next(action.help for action in parser()._actions if parameter.flag in action.option_strings)
        assert parameter.doc in help_line and repr(parameter.default) in help_line
        if value is not None:
            from_flag = runtime_config.resolve(parser().parse_args(flag_words(parameter, value)))
            assert getattr(from_flag, parameter.name) == value
            toml = tmp_path / "piece.toml"
            toml.write_text(f"[{parameter.section}]\n{parameter.name} = {runtime_config.toml_value(value)}\n",
                            encoding="utf-8")
            from_file = runtime_config.resolve(parser().parse_args(["--config", str(toml)]))
            assert getattr(from_file, parameter.name) == value
            reprinted = tmp_path / "reprinted.toml"
            reprinted.write_text(from_file.to_toml(), encoding="utf-8")
            assert getattr(runtime_config.resolve(parser().parse_args(["--config", str(reprinted)])),
                           parameter.name) == value
    if not parameter.live:
        assert parameter.name not in PARAMETERS
        return
    control = PARAMETERS[parameter.name]
    assert (control.kind, control.default, control.min, control.max, control.choices) == \
        (parameter.kind, parameter.default, parameter.min, parameter.max, parameter.choices)
    assert f"/masquerade/{parameter.name}" in osc_reference()
    if parameter.section is not None and value is not None:
        config = RuntimeConfig(**{parameter.name: value})
        assert initial_controls(config).get(parameter.name) == value  # the setting is the control's start
    if parameter.kind in ("int", "float"):
        state = ControlState()
        assert state.set(parameter.name, parameter.max + 1, "osc") == (parameter.max, True)


def test_table_names_are_unique_and_aliases_do_not_shadow_names():
    names = [parameter.name for parameter in TABLE]
    assert len(names) == len(set(names))
    for old, new in {**parameters.CONTROL_ALIASES, **parameters.SETTING_ALIASES}.items():
        assert old not in BY_NAME and new in BY_NAME
    assert [spec.name for spec in dataclasses.fields(RuntimeConfig)] == [parameter.name for parameter in SETTINGS]


def test_choices_agree_with_the_walk():
    assert set(BY_NAME["easing"].choices) == set(EASINGS) and set(BY_NAME["mode"].choices) == set(MODES)


def test_the_seed_bound_is_declared_once():
    assert SEED_MAX == parameters.SEED_MAX == BY_NAME["seed"].max == BY_NAME["offset_direction"].max
    assert MAX_SEED >= SEED_MAX  # every seed the piece accepts is one the walk can take
    RuntimeConfig(seed=SEED_MAX)
    with pytest.raises(ValueError, match=rf"^seed = {SEED_MAX + 1} is outside the allowed range 0..{SEED_MAX}$"):
        RuntimeConfig(seed=SEED_MAX + 1)
    assert ControlState().set("seed", 2**40, "osc") == (SEED_MAX, True)
    with pytest.raises(ValueError, match=rf"seed = {SEED_MAX + 1} is outside the allowed range 0..{SEED_MAX}"):
        Preset.from_json({"seed": SEED_MAX + 1, "keyframe": 0})
    for module in ("config", "controls", "presets", "app", "remote", "kiosk"):
        source = (ROOT / "installation" / f"{module}.py").read_text(encoding="utf-8")
        assert "2**31" not in source and "2147483647" not in source, module


@pytest.mark.parametrize(("values", "message"), [
    ({"speed": 11}, "speed = 11.0 is outside the allowed range 0.0..10.0"),
    ({"fit": "stretch"}, "fit = 'stretch' is not one of letterbox, fill"),
    ({"width": 1.5}, "width = 1.5 must be an integer in 64..16384"),
    ({"fit": 2}, "fit = 2 must be text, one of letterbox, fill"),
    ({"windowed": "yes"}, "windowed = 'yes' must be true or false"),
    ({"truncation": math.nan}, "truncation = nan must be a finite number in 0.0..2.0"),
])
def test_settings_refuse_bad_values_in_one_line_naming_value_and_range(values, message):
    with pytest.raises(ValueError) as error:
        RuntimeConfig(**values)
    assert str(error.value) == message


def test_the_command_line_says_what_is_wrong_in_one_line(capsys):
    assert main(["--speed", "11", "--print-config"]) == 2
    assert capsys.readouterr().err == "error: speed = 11.0 is outside the allowed range 0.0..10.0\n"


def test_live_writes_say_what_is_wrong_naming_value_and_range():
    with pytest.raises(ValueError, match=r"^speed: got 'fast', expected a finite number in 0..10$"):
        ControlState().set("speed", "fast", "osc")
    with pytest.raises(ValueError, match=re.escape("mode: got 'spiral', expected one of endless | loop | drift")):
        ControlState().set("mode", "spiral", "remote")


def test_one_validator_serves_start_up_and_live_values():
    speed = BY_NAME["speed"]
    assert check(speed, 10) == 10.0 and speed.in_range(10.0) and not speed.in_range(10.5)
    with pytest.raises(ValueError, match="outside the allowed range"):
        check(speed, 10.5)
    assert parameters.validate(speed, 10.5) == (10.0, True)


def test_old_setting_names_still_work_in_the_toml_file_with_a_warning(tmp_path, caplog):
    path = tmp_path / "show.toml"
    path.write_text("[display]\nshow_fps = true\n[render]\nblend = false\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="installation.parameters"):
        config = runtime_config.resolve(parser().parse_args(["--config", str(path)]))
    assert config.fps_overlay is True and config.fade_between_renders is False
    assert config.show_fps is True and config.blend is False  # old attribute names, for callers not yet renamed
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2 and all(str(path) in line and "old name" in line for line in warnings)
    assert "'show_fps' is the old name of 'fps_overlay'" in warnings[0]
    assert "show_fps" not in config.to_toml() and "fps_overlay = true" in config.to_toml()


def test_old_and_new_name_together_is_refused(tmp_path):
    path = tmp_path / "show.toml"
    path.write_text("[display]\nshow_fps = true\nfps_overlay = false\n", encoding="utf-8")
    with pytest.raises(ValueError, match="sets both fps_overlay and its old name show_fps; keep fps_overlay"):
        runtime_config.read_toml(path)


def test_an_old_name_in_another_section_is_still_unknown(tmp_path):
    path = tmp_path / "show.toml"
    path.write_text("[walk]\nshow_fps = true\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"unknown setting \[walk\] show_fps"):
        runtime_config.read_toml(path)


def test_old_flags_still_work_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="installation.parameters"):
        config = runtime_config.resolve(parser().parse_args(["--show-fps", "--no-blend"]))
        again = runtime_config.resolve(parser().parse_args(["--no-show-fps", "--blend"]))
    assert (config.fps_overlay, config.fade_between_renders) == (True, False)
    assert (again.fps_overlay, again.fade_between_renders) == (False, True)
    lines = [record.getMessage() for record in caplog.records]
    assert "command line: '--show-fps' is the old name of '--fps-overlay'; it still works, but please rename it" \
        in lines and any("'--no-blend' is the old name of '--no-fade-between-renders'" in line for line in lines)
    assert "--show-fps" not in parser().format_help()  # old flags work but are not advertised


def test_old_control_names_still_work_over_real_udp_with_one_warning(caplog):
    controls = ControlState()
    with caplog.at_level(logging.WARNING, logger="installation.parameters"), \
            OscServer(controls, host="127.0.0.1", port=0) as server:
        client = SimpleUDPClient("127.0.0.1", server.port)
        client.send_message("/masquerade/crossfade", 3.5)
        client.send_message("/masquerade/blend", 0.25)
        client.send_message("/masquerade", ["crossfade", 4.5, "speed", 2.0])
        assert wait_until(lambda: server.stats().applied == 4)
    assert controls.get("transition_seconds") == 4.5 and controls.get("trail") == 0.25
    snapshot = controls.snapshot()
    assert "crossfade" not in list(snapshot) and snapshot["crossfade"] == 4.5  # listed new, readable old
    warnings = [record.getMessage() for record in caplog.records if "old name" in record.getMessage()]
    assert warnings == ["osc control: 'crossfade' is the old name of 'transition_seconds'; it still works, but "
                        "please rename it",
                        "osc control: 'blend' is the old name of 'trail'; it still works, but please rename it"]


def test_presets_saved_before_the_rename_load_under_the_new_names(tmp_path):
    path = tmp_path / "presets.json"
    path.write_text(json.dumps({"format": 1, "presets": {"1": {"seed": 3, "keyframe": 1, "controls": {
        "crossfade": 1.5, "blend": 0.5, "speed": 2.0}}}}), encoding="utf-8")
    assert read_presets(path)["1"].controls == {"transition_seconds": 1.5, "trail": 0.5, "speed": 2.0}
    assert set(PRESET_CONTROLS) <= set(PARAMETERS)


def test_keys_and_remote_come_from_the_table():
    assert TOGGLE_KEYS == {"f": "fps_overlay", "c": "captions", "u": "upscale", "space": "pause"}
    assert TRIGGER_KEYS == {"right": "next", "n": "next", "left": "previous", "p": "previous", "j": "jump"}
    assert set(REMOTE_CONTROLS) == {"pause", "speed", "next", "previous", "jump", "seed", "captions", "upscale",
                                    "open_now", "close_now", "follow_hours"}


def test_whether_the_webcam_is_on_is_decided_once():
    assert not RuntimeConfig().webcam_on
    for off in ("none", "off", "Disabled"):
        assert not RuntimeConfig(webcam=off).webcam_on
    assert RuntimeConfig(webcam="0").webcam_on and RuntimeConfig(webcam="rtsp://camera/stream").webcam_on


def test_docs_hold_the_generated_address_table_and_every_remote_control():
    osc = (ROOT / "docs" / "osc.md").read_text(encoding="utf-8")
    generated = re.search(r"<!-- parameters:start -->\n(.*)\n<!-- parameters:end -->", osc, re.S)
    assert generated and generated.group(1) == osc_reference(), "regenerate with python -m installation.parameters"
    remote = (ROOT / "docs" / "remote.md").read_text(encoding="utf-8")
    listed = re.search(r"Controls: (.*?):", remote, re.S).group(1)
    assert set(re.findall(r"`(\w+)`", listed)) == set(REMOTE_CONTROLS)



def test_the_example_show_file_uses_the_current_names(caplog):
    with caplog.at_level(logging.WARNING, logger="installation.parameters"):
        values = runtime_config.read_toml(ROOT / "deploy" / "piece.toml")
    assert not caplog.records and "fps_overlay" in values and "fade_between_renders" in values
