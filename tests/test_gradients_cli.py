"""`sj-rga attack --gradient stbp rga bptr hart pdsg assg`: every estimator from the command line."""
import json

from sj_rga.cli import main
from sj_rga.experiment import GRADIENTS


def test_attack_with_every_gradient(tmp_path, digits_checkpoint, capsys):
    out = tmp_path / "attack"
    code = main(["attack", "--checkpoint", str(digits_checkpoint), "--source", str(digits_checkpoint), "--attack",
                 "fgsm", "--eps", "0.15", "--limit", "24", "--gradient", *GRADIENTS, "--out", str(out),
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err[-2000:]
    (row,) = json.loads((out / "results.json").read_text())["rows"]
    for box in ("white_box", "black_box"):
        assert list(row[box]) == list(GRADIENTS) and all(0 <= v <= 1 for v in row[box].values())
