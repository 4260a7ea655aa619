"""One evaluation engine (issue 20) with randomness per sample (issue 21): sj_rga.evaluate and sj-rga evaluate
give the same results, with 1 and 2 torchrun ranks; per-sample results do not depend on the batch size or the
number of ranks; run folders are claimed by the first finished batch and resumed runs say so."""
import json

import pytest
import torch
from distributed_worker import (
    INVARIANCE_SAMPLES,
    SUITE_BATCH,
    SUITE_SAMPLES,
    cli_suite_args,
    invariance_records,
    library_suites,
)
from test_distributed import _without_times

from sj_rga.data import digits
from sj_rga.engine import run
from sj_rga.runs import RunFolder

PER_SAMPLE = ("index", "label", "clean_ok", "robust_ok", "broken_by")


@pytest.fixture(scope="module")
def two_ranks(two_rank_job):
    """The evaluations of tests/distributed_worker.py's ``suites_and_invariance`` inside the shared 2-rank job
    (tests/shared_job.py): the library's, and the folder holding the CLI's results."""
    folder = two_rank_job.folder / "engine"
    return {**torch.load(folder / "library.pt", weights_only=False), "folder": folder}


def _library_as_cli(report, records):
    """The library's report and records in the terms of the CLI's results.json."""
    keys = {"index": "indices", "label": "labels", "clean_ok": "clean_ok", "robust_ok": "robust_ok",
            "broken_by": "broken_by"}
    per_sample = {key: [v for r in records for v in r[source]] for key, source in keys.items()}
    return report["robust_accuracy"], report["clean_accuracy"], report["attack_success_rate"], per_sample


def _cli_result(result):
    return (result["robust_accuracy"], result["clean_accuracy"], result["attack_success_rate"],
            {key: result["per_sample"][key] for key in PER_SAMPLE})


def test_library_and_cli_give_the_same_evaluation_on_one_and_two_ranks(tmp_path, digits_checkpoint_t4, two_ranks):
    """sj_rga.evaluate(target, AutoAttack(target, eps, seed=s), data) and sj-rga evaluate --seed s, with the standard
    and the fast suite, each in one process and on 2 gloo ranks: the same accuracies, ASR and per-sample results,
    and the same breakdown of the suite."""
    from sj_rga.cli import main

    for version in ("fast", "standard"):
        report, records = library_suites(digits_checkpoint_t4, version)
        library = _library_as_cli(report.as_dict(), records)
        assert report.batch_size == SUITE_BATCH and report.samples == SUITE_SAMPLES
        assert _library_as_cli(*two_ranks[version]) == library, f"library, 2 ranks, {version}"
        assert _without_times(two_ranks[version][0]) == _without_times(report.as_dict())
        for ranks in (1, 2):
            out = tmp_path / f"cli-{version}" if ranks == 1 else two_ranks["folder"] / f"cli-{version}"
            if ranks == 1:
                assert main(cli_suite_args(digits_checkpoint_t4, version, out)) == 0
            result = json.loads((out / "results.json").read_text())
            assert _cli_result(result) == library, f"CLI, {ranks} rank(s), {version}"
            assert [(row["attacked"], row["broken"]) for row in result["rows"]] == \
                [(entry["attacked"], entry["broken"]) for entry in report.breakdown]
            assert result["batch_size"] == SUITE_BATCH and result["environment"]["processes"] == ranks
        if version == "fast":  # some samples survive the suite's first attack, and some the whole suite
            assert 0 < library[0] < library[1] and report.breakdown[1]["attacked"] > 0


def test_per_sample_results_do_not_depend_on_batch_size_or_ranks(digits_checkpoint_t4, two_ranks):
    """Poisson input (seeded, EOT 2), a suite with random starts, restarts, a targeted run, ASSG's statistics,
    PGD's random start and the shuffle test: batches of 24 and 12 in one process and of 8 on 2 ranks (the
    library run of the previous test's job) give identical per-sample results."""
    whole = invariance_records(digits_checkpoint_t4, INVARIANCE_SAMPLES)
    assert invariance_records(digits_checkpoint_t4, 12) == whole
    assert two_ranks["invariance"] == whole
    suite = whole["suite"]
    assert suite["indices"] == list(range(INVARIANCE_SAMPLES))
    assert {0, 1, 2} <= set(suite["broken_by"]) and True in suite["robust_ok"], "every attack of the suite broke some"


def test_a_run_folder_is_claimed_by_its_first_finished_batch(tmp_path):
    """Nothing is written until a batch finishes: a failed first batch leaves a folder that a run with other
    arguments takes without complaint; once a batch is saved, other arguments are refused; a resumed run says
    how many batches were done."""
    x, y = digits()[1].tensors
    data = (x[:6], y[:6])

    def fail(batch):
        raise RuntimeError("the user's model failed")

    with pytest.raises(RuntimeError):
        run(data, fail, 2, RunFolder(tmp_path / "r", {"eps": 0.1}), progress=False)
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").rglob("*.json"))
    calls = []

    def stop_after_two(batch):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(batch.number)
        return {"labels": batch.y.tolist()}

    with pytest.raises(KeyboardInterrupt):
        run(data, stop_after_two, 2, RunFolder(tmp_path / "r", {"eps": 0.2}), progress=False)
    assert json.loads((tmp_path / "r" / "run.json").read_text())["arguments"] == {"eps": 0.2}
    with pytest.raises(ValueError, match="other arguments"):
        RunFolder(tmp_path / "r", {"eps": 0.1})
    said = []
    records = run(data, lambda batch: {"labels": batch.y.tolist()}, 2, RunFolder(tmp_path / "r", {"eps": 0.2}),
                  progress=False, log=said.append)
    assert said == ["resuming: 2 of 3 batches done"]
    assert [r["indices"] for r in records] == [[0, 1], [2, 3], [4, 5]]
    assert [v for r in records for v in r["labels"]] == y[:6].tolist()


def test_an_old_claim_without_batches_is_taken_over(tmp_path):
    """A run.json left by a run that never finished a batch (as earlier versions wrote at once) binds nothing."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "run.json").write_text(json.dumps({"format": "sj-rga-run-1", "arguments": {"eps": 0.1}}))
    folder = RunFolder(tmp_path / "r", {"eps": 0.3})
    assert folder.finished() == {}
    folder.save_batch(0, {"labels": [1]})
    assert json.loads((tmp_path / "r" / "run.json").read_text())["arguments"] == {"eps": 0.3}


def test_ctrl_c_before_any_batch_finished_says_so_and_claims_nothing(tmp_path, digits_checkpoint_t4, monkeypatch,
                                                                     capsys):
    from sj_rga import metrics
    from sj_rga.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(metrics, "attack_records", interrupted)
    out = tmp_path / "out"
    assert main(cli_suite_args(digits_checkpoint_t4, "fast", out)) == 130
    err = capsys.readouterr().err
    assert "no batch had finished" in err and "kept" not in err
    assert not out.exists() or not any(out.rglob("*.json"))


def test_the_report_records_the_batch_size_the_data_was_cut_into():
    from torch.utils.data import DataLoader, TensorDataset

    from sj_rga import SNNClassifier, evaluate, models

    x, y = digits()[1].tensors
    target = SNNClassifier(models.build("digits_snn", 10), 2)
    loader = DataLoader(TensorDataset(x[:6], y[:6]), batch_size=4)
    assert evaluate(target, None, loader, batch_size=256).batch_size == 4  # the loader's own
    assert evaluate(target, None, (x[:6], y[:6]), batch_size=5).batch_size == 5
    assert evaluate(target, None, [(x[:3], y[:3]), (x[3:6], y[3:6])]).batch_size is None


def test_a_third_party_attack_on_undeclared_sub_batches_of_poisson_input(digits_checkpoint_t4):
    """torchattacks' APGD restarts on the samples still robust, a sub-batch whose rows the engine cannot know:
    the classifier's Poisson spikes then come from streams of the row positions (reproducible), not an error;
    the rows of declared batches keep their samples' streams."""
    torchattacks = pytest.importorskip("torchattacks")
    from sj_rga import SNNClassifier, evaluate
    from sj_rga.checkpoints import load_checkpoint
    from sj_rga.seeding import sample_indices

    target = SNNClassifier(load_checkpoint(digits_checkpoint_t4)[0], 4, encoding="poisson", seed=1)
    x, y = digits()[1].tensors
    with sample_indices(torch.arange(10, 18)):
        whole = target.encode(x[:8])
        target.restart()
        part = target.encode(x[:3])  # three rows of an eight-row batch: undeclared
        target.restart()
        assert torch.equal(target.encode(x[:3]), part)
    target.restart()
    with sample_indices(torch.arange(12, 14)):
        assert torch.equal(target.encode(x[2:4]), whole[:, 2:4]), "a declared sample keeps its stream"
    reports = [evaluate(target, torchattacks.APGD(target, eps=0.1, steps=2, n_restarts=2, seed=0), (x[:8], y[:8]),
                        batch_size=4, progress=False) for _ in range(2)]
    assert reports[0] == reports[1] and reports[0].clean_correct > 0
