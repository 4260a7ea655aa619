"""`sj-rga attack --gradient stbp rga bptr hart pdsg assg`: every estimator from the command line."""
import json
import os
import subprocess
import sys

from sj_rga.experiment import GRADIENTS
from sj_rga.training import TrainConfig, train_model


def test_attack_with_every_gradient(tmp_path):
    checkpoint = tmp_path / "digits.pt"
    train_model("digits_snn", "digits", config=TrainConfig(epochs=1, batch_size=32, max_batches=8, progress=False),
                checkpoint=checkpoint)
    out = tmp_path / "attack"
    done = subprocess.run(
        [sys.executable, "-m", "sj_rga", "attack", "--checkpoint", str(checkpoint), "--source", str(checkpoint),
         "--attack", "fgsm", "--eps", "0.15", "--limit", "24", "--gradient", *GRADIENTS, "--out", str(out),
         "--no-progress"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = json.loads((out / "results.json").read_text())["rows"]
    for box in ("white_box", "black_box"):
        assert list(row[box]) == list(GRADIENTS) and all(0 <= v <= 1 for v in row[box].values())
