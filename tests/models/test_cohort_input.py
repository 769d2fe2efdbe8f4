"""Cohort membership as an extra model input (``zoo.nets.cohort``, ``TransducerASR(cohort_input=...)``): the
zero-initialised embedding is the model without it, a cohort's vector acts only on its own utterances, unknown
cohorts are the nearest centroid of the first ``assign_ms``, config.json round-trips, streaming == batch."""
from __future__ import annotations

import copy
import random
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from zoo.errors import ZooError
from zoo.models.base import load_folder
from zoo.nets.cohort import CohortInput, nearest_centroid

from helpers import lively_net, make_tiny_speaker

ASSIGN_MS = 1000.0
N_ASSIGN = 16000  # samples of ASSIGN_MS at 16 kHz


def batch(wavs):
    return torch.nn.utils.rnn.pad_sequence(list(wavs), batch_first=True), torch.tensor([w.numel() for w in wavs])


@pytest.fixture(scope="module")
def plain(wavs):
    return lively_net(wavs[2])


@pytest.fixture(scope="module")
def speaker():
    return make_tiny_speaker()


def with_cohorts(net, speaker, wavs, std: float = 0.0, seed: int = 0):
    """A copy of ``net`` with a 3-cohort input whose centroid i is the tiny speaker's embedding of the first
    second of ``wavs[i]`` (so utterance i's own cohort is i); cohort vectors N(0, std)."""
    cents = speaker.embed([w[:N_ASSIGN] for w in wavs[:3]], sample_rate=16000)
    m = copy.deepcopy(net)
    m.add_cohort_input(cents.tolist(), copy.deepcopy(speaker), speaker_model="tiny", assign_ms=ASSIGN_MS)
    if std:
        with torch.no_grad():
            m.cohort.embedding.weight.copy_(torch.randn(m.cohort.embedding.weight.shape,
                                                        generator=torch.Generator().manual_seed(seed)) * std)
    return m.eval()


@pytest.fixture(scope="module")
def lively(plain, speaker, wavs):
    return with_cohorts(plain, speaker, wavs, std=1.5)


# --- the added input ----------------------------------------------------------------------------------------
def test_zero_initialised_embedding_is_the_model_without_it(plain, speaker, wavs):
    m = with_cohorts(plain, speaker, wavs)
    assert not m.cohort.embedding.weight.any() and m.cohort.embedding.weight.requires_grad
    assert not any(p.requires_grad for p in m.cohort.speaker.parameters())  # the speaker net is frozen
    x, lens = batch(wavs[:3])
    with torch.no_grad():
        want, wl = plain.encode(x, lens)
        for cohort in (None, [2, 0, 1]):
            got, gl = m.encode(x, lens, cohort)
            assert torch.equal(got, want) and torch.equal(gl, wl)
    assert m.transcribe(wavs[:3], sample_rate=16000) == plain.transcribe(wavs[:3], sample_rate=16000)


def test_a_cohort_vector_acts_only_on_its_own_utterances(lively, wavs):
    m = copy.deepcopy(lively)
    x, lens = batch(wavs[:3])
    cohort = torch.tensor([0, 1, 0])
    with torch.no_grad():
        ref, _ = m.encode(x, lens, cohort)
        # by hand: the cohort's vector added to every normalised feature frame, then the encoder
        feats, flens = m.featurizer(x, lens)
        hand, _ = m.encoder(feats + m.cohort.embedding.weight[cohort][:, None, :], flens)
        assert torch.allclose(ref, hand, atol=1e-6)
        # (a random vector: the LSTM encoder's input LayerNorm would cancel a constant shift of every feature)
        g = torch.Generator().manual_seed(1)
        m.cohort.embedding.weight[2] += torch.randn(m.featurizer.dim, generator=g)  # no utterance in cohort 2
        assert torch.equal(m.encode(x, lens, cohort)[0], ref)
        m.cohort.embedding.weight[1] += torch.randn(m.featurizer.dim, generator=g)  # only utterance 1
        got, _ = m.encode(x, lens, cohort)
    assert torch.equal(got[0], ref[0]) and torch.equal(got[2], ref[2])
    assert not torch.allclose(got[1], ref[1], atol=1e-3)


def test_the_cohort_changes_the_transcript(lively, wavs):
    texts = {c: lively.transcribe(wavs[:3], sample_rate=16000, cohort=c) for c in range(3)}
    assert len({tuple(t) for t in texts.values()}) > 1  # otherwise the comparisons below could not fail
    per_input = lively.transcribe(wavs[:3], sample_rate=16000, cohort=[2, 0, 1], batch_size=2)
    assert per_input == [texts[2][0], texts[0][1], texts[1][2]]


# --- the cohort of an utterance -------------------------------------------------------------------------------
def test_nearest_centroid_by_hand():
    cents = torch.tensor([[1.0, 0.0], [3.0, 3.0], [-1.0, 0.0]])
    x = torch.tensor([[0.6, 0.8], [-0.8, -0.6], [0.8, 0.6]])
    # squared distances to the centroids: x0: 0.8, 10.6, 3.2 | x1: 3.6, 27.4, 0.4 | x2: 0.4, 10.6, 3.6
    assert nearest_centroid(x, cents, "euclidean").tolist() == [0, 2, 0]
    # cosines: x0: 0.6, 0.99, -0.6 | x1: -0.8, -0.99, 0.8 | x2: 0.8, 0.99, -0.8
    assert nearest_centroid(x, cents, "cosine").tolist() == [1, 2, 1]
    with pytest.raises(ValueError, match="metric"):
        nearest_centroid(x, cents, "manhattan")


class MeanSpeaker(nn.Module):
    """A stand-in speaker net: the embedding of an utterance is (mean of its valid samples, 0)."""

    def __init__(self):
        super().__init__()
        self.featurizer = SimpleNamespace(sample_rate=1000, win=4)
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, wav, lengths):
        mask = torch.arange(wav.shape[1])[None] < lengths[:, None]
        m = (wav * mask).sum(1) / lengths
        return torch.stack([m * self.scale, torch.zeros_like(m)], 1)


def test_assign_reads_only_the_first_assign_ms():
    cents = [[0.0, 0.0], [1.0, 0.0]]
    a = torch.cat([torch.zeros(100), torch.ones(300)])  # first 100 ms silent, then loud: mean 0.75 overall
    b = torch.cat([torch.ones(100), torch.zeros(50)])
    x, lens = batch([a, b])
    assert CohortInput(2, 3, cents, MeanSpeaker(), assign_ms=100).assign(x, lens).tolist() == [0, 1]
    assert CohortInput(2, 3, cents, MeanSpeaker(), assign_ms=None).assign(x, lens).tolist() == [1, 1]
    # zero padding beyond b's length is not audio (counted, b's mean would be 0.25: cohort 0)
    assert CohortInput(2, 3, cents, MeanSpeaker(), assign_ms=None).assign(
        torch.stack([a, torch.cat([b[:100], torch.zeros(300)])]), torch.tensor([400, 100])).tolist() == [1, 1]


def test_unknown_cohorts_are_the_nearest_centroid(lively, wavs):
    x, lens = batch(wavs[:3])
    assert lively.cohort_ids(x, lens).tolist() == [0, 1, 2]  # centroid i: utterance i's own embedding
    assert lively.cohort_ids(x, lens, [-1, 2, -1]).tolist() == [0, 2, 2]
    # audio after the first assign_ms does not matter: utterance 0 followed by utterance 1 is still cohort 0
    joined = torch.cat([wavs[0][:N_ASSIGN], wavs[1]])
    assert lively.cohort_ids(joined[None], torch.tensor([joined.numel()])).tolist() == [0]
    assert lively.transcribe(wavs[:3], sample_rate=16000) == \
        lively.transcribe(wavs[:3], sample_rate=16000, cohort=[0, 1, 2])


def test_cohort_mistakes_are_zoo_errors(lively, plain, wavs):
    x, lens = batch(wavs[:2])
    with pytest.raises(ZooError, match="no cohort input"):
        plain.transcribe(wavs[:1], sample_rate=16000, cohort=0)
    with pytest.raises(ZooError, match=r"in 0\.\.2"):
        lively.transcribe(wavs[:1], sample_rate=16000, cohort=3)
    with pytest.raises(ZooError, match="one per input"):
        lively.transcribe(wavs[:2], sample_rate=16000, cohort=[0])
    with pytest.raises(ZooError, match="one per utterance"):
        lively.cohort_ids(x, lens, [0, 1, 2])
    m = copy.deepcopy(plain)
    m.add_cohort_input([[0.0] * 24] * 2, None)
    with pytest.raises(ZooError, match="no speaker model"):
        m.cohort_ids(x, lens)
    assert m.cohort_ids(x, lens, 1).tolist() == [1, 1]
    with pytest.raises(ZooError, match="already has"):
        m.add_cohort_input([[0.0] * 24], None)
    with pytest.raises(ZooError, match="dimensions"):
        copy.deepcopy(plain).add_cohort_input([[0.0] * 5], make_tiny_speaker())


# --- the model folder -----------------------------------------------------------------------------------------
def test_config_json_round_trip(lively, plain, wavs, tmp_path):
    folder = lively.save_pretrained(tmp_path / "cohort-model")
    back = load_folder(folder)
    assert back.config() == lively.config()
    ci = back.config()["cohort_input"]
    assert ci["n_cohorts"] == 3 and ci["speaker_model"] == "tiny" and ci["assign_ms"] == ASSIGN_MS
    assert ci["speaker"] == lively.cohort.speaker.config()
    assert torch.equal(back.cohort.centroids, lively.cohort.centroids)
    state = lively.state_dict()
    assert back.state_dict().keys() == state.keys() and all(torch.equal(v, state[k]) for k, v in
                                                            back.state_dict().items())
    assert back.streaming_info()["cohort_wait_ms"] == ASSIGN_MS
    assert back.transcribe(wavs[:3], sample_rate=16000) == lively.transcribe(wavs[:3], sample_rate=16000)
    assert "cohort_input" not in plain.config() and "cohort_wait_ms" not in plain.streaming_info()


# --- streaming --------------------------------------------------------------------------------------------------
def pieces(wav, seed):
    rng, i = random.Random(seed), 0
    while i < wav.numel():
        n = rng.choice([1, 37, rng.randint(100, 6000)])
        yield wav[i:i + n]
        i += n


@pytest.mark.parametrize("k", [0, 1])
def test_stream_equals_transcribe(lively, wavs, k):
    w = wavs[k]
    s, pushed = lively.stream(), 0
    for p in pieces(w, k):
        r = s.accept_waveform(p)
        pushed += p.numel()
        if pushed < N_ASSIGN:  # the cohort is not known yet: the session holds the audio, decodes nothing
            assert r.text == "" and s.tokens == [] and s._samples.shape[1] == pushed
    assert s.finalize().text == lively.transcribe(w, sample_rate=16000)[0]
    for c in range(3):
        assert lively.stream_all(w, cohort=c).text == lively.transcribe(w, sample_rate=16000, cohort=c)[0]


def test_short_stream_decides_at_finalize_and_session_errors(lively, wavs):
    short = wavs[3][:N_ASSIGN // 2]
    assert lively.stream_transcribe(short) == lively.transcribe(short, sample_rate=16000)[0]
    s = lively.stream()
    s.accept_waveform(short[:100])
    with pytest.raises(ZooError, match="before streaming"):
        s.set_cohort(1)
    s.reset()
    with pytest.raises(ZooError, match="whole number"):
        s.set_cohort(-1)
    s.set_cohort(2)
    s.accept_waveform(short)
    assert s.finalize().text == lively.transcribe(short, sample_rate=16000, cohort=2)[0]
