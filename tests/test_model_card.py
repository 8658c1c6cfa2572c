"""The model card command (studio.model_card): bad input gets one clear line and exit 2, and nothing is written."""

from studio.model_card import main


def test_missing_bundle_is_one_error_line_and_exit_2(tmp_path, capsys):
    bundle = tmp_path / "no-bundle"
    assert main(["--model", str(bundle), "--dcgan-run", str(tmp_path / "no-run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(bundle) in err[0]
    assert not bundle.exists()


def test_the_card_names_a_different_rgb_stage_and_reads_bundles_from_before_the_option():
    from studio.model_card import upsampling_words

    assert upsampling_words({"upsampling": "resize", "rgb_upsampling": "subpixel"}) == "resize, the RGB stage subpixel"
    assert upsampling_words({"upsampling": "resize", "rgb_upsampling": "resize"}) == "resize"
    assert upsampling_words({"upsampling": "resize"}) == "resize"
    assert upsampling_words({}) == "transposed"
