"""The streaming contract: chunked encoder and StreamingSession equal whole-utterance inference.

The tiny model is random, so its text is garbage; we only ever compare streaming against batch."""
from __future__ import annotations

import itertools
import random

import pytest
import torch

from zoo.audio import load_audio
from zoo.errors import ZooError
from zoo.models.decoding import greedy_search
from zoo.nets import ENCODERS

from helpers import TINY_ENCODERS, TINY_MODEL, lively_net, make_tiny_net, randomize_zero_init, stream_encoder  # noqa: F401


def sample_partitions(n: int, seed: int):
    """(name, chunk sizes) covering ``n`` samples: 1-sample pushes (then random), random, odd, whole."""
    rng = random.Random(seed)
    ones = [1] * 700 + [rng.randint(1, 9000) for _ in range(n // 100 + 50)]
    rand = [rng.choice([1, 7, rng.randint(1, 300), rng.randint(300, 12000)]) for _ in range(n // 100 + 50)]
    return [("ones", ones), ("random", rand), ("odd", [2731] * (n // 2731 + 1)), ("whole", [n])]


def chunks(wav: torch.Tensor, sizes: list[int]):
    """Consecutive pieces of ``wav`` with the given sizes; the sizes must cover all of it."""
    i = 0
    for s in sizes:
        if i >= wav.numel():
            return
        yield wav[i:i + s]
        i += s
    assert i >= wav.numel(), "partition shorter than the audio"


@pytest.fixture(scope="module")
def net(wavs):
    return lively_net(wavs[0])


@pytest.fixture(scope="module")
def wavs(an4_wavs):
    return [load_audio(p, 16000) for p in an4_wavs[2:4]]  # 3.3 s and 0.8 s


@pytest.fixture(scope="module")
def batch_ref(net, wavs):
    """Greedy tokens and text of each utterance from whole-utterance (batched) inference."""
    with torch.inference_mode():
        lens = torch.tensor([w.numel() for w in wavs])
        enc, elens = net.encode(torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), lens)
        toks = greedy_search(net, enc, elens).hyps
    texts = net.transcribe(wavs, sample_rate=16000)
    assert texts == [net.tokenizer.decode(t) for t in toks]
    # guard against a vacuous comparison: varied tokens, and blanks between them
    assert all(len(set(t)) >= 3 for t in toks)
    assert 0 < len(toks[0]) < int(elens[0])
    assert texts[0].count(" ") >= 3
    return toks, texts


# --- encoder ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_encoder_stream_step_equals_forward(net, wavs, seed):
    enc_net = net.encoder
    k = enc_net.subsampling
    assert enc_net.lookahead_frames == 0
    with torch.no_grad():
        feats, flen = net.featurizer(wavs[0][None])
        full, olen = enc_net(feats, flen)
        t = feats.shape[1]
        rng = random.Random(seed)
        for sizes in ([k] * t, [k * rng.randint(1, 9) for _ in range(t)], [k * 7] * t, [t // k * k]):
            got = stream_encoder(enc_net, feats, sizes)
            assert got.shape == full.shape == (1, int(olen), enc_net.output_dim)
            assert (got - full).abs().max() <= 1e-4


def test_encoder_is_causal(net, wavs):
    """The encoder output of a prefix equals the first frames of the output of the whole utterance."""
    with torch.no_grad():
        feats, flen = net.featurizer(wavs[0][None])
        full, _ = net.encoder(feats, flen)
        for t in (4, 9, 40, 101, feats.shape[1] - 1):
            pre, plen = net.encoder(feats[:, :t], torch.tensor([t]))
            assert pre.shape[1] == int(plen) == t // 4
            assert (pre - full[:, : pre.shape[1]]).abs().max() <= 1e-4


def test_decoding_a_prefix_is_causal(net, wavs):
    """Transcribing the first n samples == decoding the whole utterance's encoder output cut to those frames."""
    w = wavs[0]
    with torch.inference_mode():
        enc, _ = net.encode(w[None], torch.tensor([w.numel()]))
        for n in (8000, 20000, 37123):
            pre_enc, plen = net.encode(w[None, :n], torch.tensor([n]))
            cut = greedy_search(net, enc, plen).hyps[0]
            assert greedy_search(net, pre_enc, plen).hyps[0] == cut
            assert net.transcribe(w[:n], sample_rate=16000)[0] == net.tokenizer.decode(cut)


def test_empty_encoder_input(net):
    with torch.no_grad():
        y, lens = net.encoder(torch.zeros(2, 3, 40), torch.tensor([3, 2]))
    assert y.shape == (2, 0, net.encoder.output_dim) and lens.tolist() == [0, 0]


# --- StreamingSession ------------------------------------------------------------------------------
def run_session(session, wav, sizes):
    """Push chunks; check the text/new_text contract on every call; return the final result."""
    text = ""
    for c in chunks(wav, sizes):
        r = session.accept_waveform(c)
        assert r.text == text + r.new_text  # cumulative text; new_text is what this call added
        assert r.text == session.model.tokenizer.decode(session.tokens)
        text = r.text
    r = session.finalize()
    assert r.text == text + r.new_text
    return r


def test_new_text_pieces_add_up(net, wavs, batch_ref):
    """Printing each new_text as it arrives reproduces the final text, spaces included."""
    s = net.stream(chunk_ms=40)
    pieces = [s.accept_waveform(c).new_text for c in chunks(wavs[0], [640] * 100)]
    pieces.append(s.finalize().new_text)
    assert "".join(pieces) == batch_ref[1][0]
    assert sum(p != "" for p in pieces) >= 5  # text really arrived piece by piece
    assert any(p.startswith(" ") for p in pieces)  # a word boundary fell between two calls


@pytest.mark.parametrize("seed", [0, 1])
def test_session_equals_transcribe(net, wavs, batch_ref, seed):
    toks, texts = batch_ref
    for i, w in enumerate(wavs):
        for name, sizes in sample_partitions(w.numel(), seed + 10 * i):
            s = net.stream(chunk_ms=160)
            r = run_session(s, w, sizes)
            assert s.tokens == toks[i], name
            assert r.text == texts[i], name


@pytest.mark.parametrize("chunk_ms", [10, 37.5, 160, 640, 10_000])
def test_chunk_length_does_not_change_result(net, wavs, batch_ref, chunk_ms):
    toks, texts = batch_ref
    s = net.stream(chunk_ms=chunk_ms)
    r = run_session(s, wavs[0], [1234] * 100)
    assert (s.tokens, r.text) == (toks[0], texts[0])


def test_session_emits_text_before_the_end(net, wavs, batch_ref):
    """Streaming is incremental: text appears while audio is still arriving, as a growing prefix."""
    s = net.stream(chunk_ms=160)
    seen = []
    for c in chunks(wavs[0], [1600] * 40):
        seen.append(s.accept_waveform(c).text)
    assert seen[len(seen) // 2] != ""
    assert all(b.startswith(a) for a, b in zip(seen, seen[1:]))
    assert batch_ref[1][0].startswith(seen[-1])


def test_reset_makes_session_reusable(net, wavs, batch_ref):
    toks, texts = batch_ref
    s = net.stream(chunk_ms=160)
    run_session(s, wavs[0], [3000] * 30)
    s.reset()
    assert s.tokens == [] and s.finalize().text == ""
    s.reset()  # a finalized session takes no more audio until reset
    r = run_session(s, wavs[1], [999] * 30)
    assert (s.tokens, r.text) == (toks[1], texts[1])
    # reset in the middle of an utterance discards everything buffered so far
    s.reset()
    for i in range(5):
        s.accept_waveform(wavs[1][777 * i:777 * (i + 1)])
    s.reset()
    r = run_session(s, wavs[0], [5000] * 20)
    assert (s.tokens, r.text) == (toks[0], texts[0])


def test_sessions_are_independent(net, wavs, batch_ref):
    """Two interleaved sessions on one model do not share state."""
    a, b = net.stream(), net.stream()
    for ca, cb in itertools.zip_longest(chunks(wavs[0], [800] * 100), chunks(wavs[1], [1300] * 100)):
        if ca is not None:
            a.accept_waveform(ca)
        if cb is not None:
            b.accept_waveform(cb)
    assert b.finalize().text == batch_ref[1][1]
    assert a.finalize().text == batch_ref[1][0]


def test_short_audio_streams_and_transcribes_to_empty(net):
    w = torch.randn(500) * 0.1  # fewer samples than one encoder frame needs
    s = net.stream()
    s.accept_waveform(w)
    assert s.finalize().text == "" and s.tokens == []
    assert net.transcribe(w, sample_rate=16000) == [""]


def test_session_input_errors(net):
    s = net.stream()
    with pytest.raises(ZooError, match="16000 Hz"):
        s.accept_waveform(torch.zeros(800), sample_rate=8000)
    with pytest.raises(ZooError, match="NaN or Inf"):
        s.accept_waveform(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ZooError, match="mono"):
        s.accept_waveform(torch.zeros(2, 800))
    with pytest.raises(ZooError, match="chunk_ms"):
        net.stream(chunk_ms=0)
    s.accept_waveform(torch.zeros(1, 800), sample_rate=16000)  # (1, S) and the right rate are fine


def test_streaming_info(net):
    info = net.streaming_info(160)
    assert info["supported"] and info["frame_ms"] == pytest.approx(40.0)
    assert info["algorithmic_latency_ms"] == pytest.approx(160 + 15)


# --- every encoder ---------------------------------------------------------------------------------
def test_every_encoder_has_a_tiny_config():
    assert set(TINY_ENCODERS) == set(ENCODERS)


@pytest.mark.parametrize("name", sorted(TINY_ENCODERS))
def test_session_equals_transcribe_every_encoder(name, wavs):
    """Held-back outputs (Emformer segments) and flushing at the end keep the session exact."""
    net = lively_net(wavs[0], encoder=name)
    texts = net.transcribe(wavs, sample_rate=16000)
    assert all(texts) and texts[0] != texts[1]
    s = net.stream(chunk_ms=120)
    for i, w in enumerate(wavs):
        parts = dict(sample_partitions(w.numel(), 5 + i))
        for pname in ("random", "odd") if i == 0 else ("ones", "whole"):
            s.reset()
            assert run_session(s, w, parts[pname]).text == texts[i], (name, pname)
