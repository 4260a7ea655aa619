"""What the CLI tests of issue 21 share: a small digits checkpoint (one short epoch, about a second)."""
import pytest


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory):
    """A checkpoint written by sj-rga's own training (digits_snn, T = 8, direct input; 8 batches of one epoch)."""
    from dataclasses import replace

    from sj_rga.training import DIGITS_PRESET, train_model

    path = tmp_path_factory.mktemp("checkpoint") / "digits.pt"
    train_model("digits_snn", "digits", T=8, config=replace(DIGITS_PRESET, epochs=1, max_batches=8), checkpoint=path)
    return path
