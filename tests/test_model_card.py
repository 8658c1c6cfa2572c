"""The model card command (studio.model_card): bad input gets one clear line and exit 2, and nothing is written."""

from studio.model_card import main


def test_missing_bundle_is_one_error_line_and_exit_2(tmp_path, capsys):
    bundle = tmp_path / "no-bundle"
    assert main(["--model", str(bundle), "--dcgan-run", str(tmp_path / "no-run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(bundle) in err[0]
    assert not bundle.exists()
