"""`python -m training dcgan --help` (and srgan): every option has a sentence of help, its default and its range."""

import re

import pytest

from training.__main__ import main

OPTION = re.compile(r"^  (-\w, )?(--[\w-]+)")


def option_help(command: str, capsys, monkeypatch) -> dict[str, str]:
    """{flag: its help text, on one line} from the command's real --help output."""
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    texts, current = {}, None
    for line in capsys.readouterr().out.splitlines():
        match = OPTION.match(line)
        if match:
            current = match.group(2)
            texts[current] = line[match.end():]
        elif current and line.startswith("   "):
            texts[current] += "  " + line.strip()  # two spaces: a metavar is then always set apart from the help
        else:
            current = None
    # What follows the flag: an optional metavar (NAME or true|false), then the help.
    return {flag: " ".join(re.sub(r"^ ?([A-Z_]+|true\|false)?\s{2,}", "", text).split())
            for flag, text in texts.items()}


def is_sentence(text: str) -> bool:
    """Starts with a capital, has at least four words, and ends a clause with a full stop."""
    return bool(re.match(r"^[A-Z][\w'-]*(\W+[\w'-]+){3,}.*?\.(\s|$)", text))


@pytest.mark.parametrize("command", ["dcgan", "srgan"])
def test_every_option_has_a_sentence_of_help(command, capsys, monkeypatch):
    helps = option_help(command, capsys, monkeypatch)
    assert len(helps) > 30
    lacking = {flag: text for flag, text in helps.items() if flag != "--help" and not is_sentence(text)}
    assert not lacking, lacking


@pytest.mark.parametrize("command, flag, shown", [
    ("dcgan", "--latent-dim", ["range 1..4096", "default: 100"]),
    ("dcgan", "--ema-decay", ["range [0, 1)", "default: 0.0"]),
    ("dcgan", "--loss", ["one of bce, hinge", "default: bce"]),
    ("dcgan", "--strategy", ["one of auto, cpu, mirrored, multiworker, tpu", "default: auto"]),
    ("dcgan", "--tpu-zone", ["default: unset"]),
    ("srgan", "--gan-loss", ["one of bce, hinge, ragan"]),
    ("srgan", "--hr-size", ["range 16..4096", "default: 256"]),
    ("srgan", "--max-blur-sigma", ["default: "]),
])
def test_help_shows_the_default_and_the_allowed_values(command, flag, shown, capsys, monkeypatch):
    text = option_help(command, capsys, monkeypatch)[flag]
    for part in shown:
        assert part in text, text


def test_flags_cover_every_option_once_and_skip_the_test_only_one(capsys, monkeypatch):
    from training.options import leaf_fields
    from training.srgan import SRGANConfig

    helps = option_help("srgan", capsys, monkeypatch)
    flags = {"--" + (field.metadata.get("key") or field.name).replace("_", "-") for field in leaf_fields(SRGANConfig)}
    assert flags <= set(helps)
    assert "--strategy" in helps and "--tpu" in helps and "--name" not in helps
    assert "Testing only" in helps["--vgg-random-weights"]
