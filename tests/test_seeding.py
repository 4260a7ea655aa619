"""Per-sample random streams (sj_rga.seeding): a sample's draws depend on (seed, its index, parts) only."""
import pytest
import torch

from sj_rga.seeding import SampleStreams, current_indices, derive_seed, sample_indices


def test_a_sample_draws_the_same_numbers_in_any_batch():
    with sample_indices(torch.arange(0, 8)):
        whole = SampleStreams(3, 8, parts=(1,)).rand((2, 5))
    with sample_indices([5, 6]):
        part = SampleStreams(3, 2, parts=(1,)).rand((2, 5))
    alone = SampleStreams(3, indices=torch.tensor([6]), parts=(1,)).rand((2, 5))
    assert torch.equal(whole[5:7], part) and torch.equal(whole[6], alone[0])
    # each row is a plain generator seeded with derive_seed(seed, index, *parts): an independent transcription
    expected = torch.rand((2, 5), generator=torch.Generator().manual_seed(derive_seed(3, 6, 1)))
    assert torch.equal(alone[0], expected)


def test_streams_differ_between_samples_seeds_and_parts():
    a = SampleStreams(0, 2).randn((100,))
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(a, SampleStreams(1, 2).randn((100,)))
    assert not torch.equal(a, SampleStreams(0, 2, parts=(7,)).randn((100,)))


def test_a_subset_continues_each_samples_stream():
    full = SampleStreams(0, 4)
    reference = SampleStreams(0, 4)
    full.rand((3,))
    reference.rand((3,))
    assert torch.equal(full.subset([1, 3]).rand((3,)), reference.rand((3,))[[1, 3]])


def test_outside_a_block_rows_are_numbered_from_zero_and_wrong_lengths_are_refused():
    assert torch.equal(current_indices(3), torch.arange(3))
    with sample_indices([4, 9]):
        assert current_indices(2).tolist() == [4, 9]
        with pytest.raises(ValueError, match="2 sample indices were declared for a batch of 3"):
            current_indices(3)
    with pytest.raises(ValueError, match="non-negative"), sample_indices([-1]):
        pass
    assert SampleStreams(0, 0).randint(5, (2,)).shape == (0, 2)
