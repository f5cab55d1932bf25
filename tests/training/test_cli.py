"""Command line: bad input gives one 'error: ...' line and exit code 2."""
from training.cli import main


def test_missing_encoder_weights(tmp_path, capsys):
    code = main(["train", "--encoder-weights", str(tmp_path / "nope.h5"), "--dataset", str(tmp_path / "d.json")])
    assert code == 2 and capsys.readouterr().out.startswith("error: encoder weights not found")


def test_missing_labels(tmp_path, capsys):
    code = main(["train", "--encoder-weights", "none", "--labels", str(tmp_path), "--dataset", str(tmp_path / "d.json")])
    assert code == 2 and "no labels" in capsys.readouterr().out


def test_export_without_run(tmp_path, capsys):
    code = main(["export", "--run-dir", str(tmp_path), "--work-dir", str(tmp_path / "w"), "--no-ship"])
    assert code == 2 and "no trained run" in capsys.readouterr().out


def test_bad_refine_setting(tmp_path, capsys):
    code = main(["export", "--run-dir", str(tmp_path), "--refine-eps", "0"])
    assert code == 2 and "eps > 0" in capsys.readouterr().out
