"""Separator-Transducer-Segmenter: targets, losses, turn parsing, streaming == batch, model folders, CLI, fit."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from zoo.models.sts import EOT, SOT, STSASR, Turn, sts_tokenizer
from zoo.tasks.sts import STSTask, assign_channels
from zoo.text import CharTokenizer, build_tokenizer

from helpers import TINY_STS, biased_sts, make_sts  # noqa: F401


@pytest.fixture(scope="module")
def session(an4_root):
    """A real two-speaker AN4 session: (waveform, turns)."""
    from zoo.data.an4 import an4_cuts
    from zoo.data.mix import SessionMixer, cut_turns

    cuts = an4_cuts(an4_root.parent)["test"]
    s = SessionMixer(cuts, min_turns=3, max_turns=3, overlap_weights={"medium": 1.0}).session(
        cuts[0], random.Random(0))
    return torch.from_numpy(s.load_audio()[0]), cut_turns(s)


# --- targets ----------------------------------------------------------------------------------------
def test_assign_channels_by_overlap():
    assert assign_channels([("A", 0, 2, ""), ("B", 1, 3, ""), ("A", 3.5, 4, "")]) == [0, 1, 0]
    assert assign_channels([("A", 0, 1, ""), ("B", 1.5, 2, ""), ("A", 2.5, 3, "")]) == [0, 0, 0]
    # a turn starting exactly when the previous ends takes the freed channel
    assert assign_channels([("A", 0, 1, ""), ("B", 1, 2, "")]) == [0, 0]
    # input order does not matter: the output follows it
    assert assign_channels([("A", 3.5, 4, ""), ("B", 1, 3, ""), ("A", 0, 2, "")]) == [0, 1, 0]
    # channel 1 busy, channel 0 frees first -> the next overlapping turn goes back to 0
    assert assign_channels([("A", 0, 2, ""), ("B", 1, 5, ""), ("A", 2.5, 3, "")]) == [0, 1, 0]
    # three-way overlap (never in two-speaker sessions): the channel that frees first
    assert assign_channels([("A", 0, 5, ""), ("B", 1, 2, ""), ("C", 1.5, 3, "")]) == [0, 1, 1]


def test_tokenizer_round_trip_with_turn_tokens():
    tok = sts_tokenizer(True)
    text = "<sot> HELLO WORLD <eot> <sot> IT'S ME <eot>"
    ids = tok.encode(text)
    assert ids.count(tok.token_id(SOT)) == 2 and ids.count(tok.token_id(EOT)) == 2
    assert tok.decode(ids) == text
    assert tok.encode("<sot>HI<eot>") == [tok.token_id(SOT)] + tok.encode("HI") + [tok.token_id(EOT)]
    assert tok.vocab_size == CharTokenizer().vocab_size + 2
    again = build_tokenizer(tok.config())
    assert again.encode(text) == ids and again.decode(ids) == text
    plain = sts_tokenizer(False)
    assert plain.config() == CharTokenizer().config() and plain.vocab_size == CharTokenizer().vocab_size
    with pytest.raises(ValueError):
        CharTokenizer(specials=["<x>", "<x>"])


def test_targets_and_activity(session):
    task = STSTask(**TINY_STS)
    turns = [("A", 0.0, 1.0, "hi"), ("B", 0.5, 1.5, "yes"), ("A", 2.0, 2.5, "no")]
    y, lens, act, eots = task.targets([turns], 70)
    tok = task.net.tokenizer
    assert [tok.decode(r[:n].tolist()) for r, n in zip(y, lens)] == ["<sot> HI <eot> <sot> NO <eot>", "<sot> YES <eot>"]
    assert [p for p, _ in eots[0]] == [3, 7] and [e for _, e in eots[0]] == [1.0, 2.5]
    centres = task.frame_centres(70)
    assert torch.equal(act[0, 1].bool(), (centres >= 0.5) & (centres < 1.5))
    base = STSTask(**TINY_STS, turn_tokens=False)
    y, lens, _, eots = base.targets([turns], 70)
    assert [base.net.tokenizer.decode(r[:n].tolist()) for r, n in zip(y, lens)] == ["HI NO", "YES"]
    assert eots == [[], []]


# --- losses -----------------------------------------------------------------------------------------
def _batch(session):
    wav, turns = session
    return {"audio": wav[None], "audio_lens": torch.tensor([wav.numel()]), "turns": [turns]}


@pytest.mark.parametrize("turn_tokens", [True, False])
def test_loss_finite_and_gradients_reach_separator_and_activity_head(session, turn_tokens):
    torch.manual_seed(0)
    task = STSTask(**TINY_STS, turn_tokens=turn_tokens)
    loss, logs, _, _ = task.forward_loss(_batch(session), train=True)
    assert torch.isfinite(loss) and logs["activity_loss"] > 0
    loss.backward()
    enc = task.net.encoder
    for name, p in [("separator", enc.separator.weight), ("activity", enc.activity.weight),
                    ("mixture", next(enc.mixture.parameters())), ("recognition", next(enc.recognition.parameters())),
                    ("joiner", task.net.joiner.out.weight)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def _loss_grads(task, logits, y, elens, ylens, **kw):
    x = logits.clone().requires_grad_()
    loss = task.rnnt_loss(x, y, elens, ylens, **kw)
    loss.backward()
    return loss.detach(), x.grad


def test_fastemit_scales_label_gradients_only():
    task = STSTask(**TINY_STS)
    g = torch.Generator().manual_seed(0)
    v = task.net.tokenizer.vocab_size
    logits = torch.randn(2, 12, 5, v, generator=g)
    y = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    elens, ylens = torch.tensor([12, 9]), torch.tensor([4, 2])
    l0, g0 = _loss_grads(task, logits, y, elens, ylens, fastemit_lambda=0.0)
    l1, g1 = _loss_grads(task, logits, y, elens, ylens, fastemit_lambda=0.5)
    assert torch.allclose(l0, l1)                       # same loss value
    assert (g1 - g0).abs().max() > 1e-4                 # different gradients
    # w.r.t. log-probabilities: label-emission entries scaled by 1 + lambda, blanks unchanged
    lp = logits.log_softmax(-1)
    a, b = lp.clone().requires_grad_(), lp.clone().requires_grad_()
    import torchaudio

    torchaudio.functional.rnnt_loss(a, y.int(), elens.int(), ylens.int(), fused_log_softmax=False,
                                    reduction="sum").backward()
    lab = torch.nn.functional.one_hot(y, v).float() * (torch.arange(4)[None] < ylens[:, None]).unsqueeze(-1)
    lab = torch.nn.functional.pad(lab, (0, 0, 0, 1)).unsqueeze(1)
    fe = b + 0.5 * (b - b.detach()) * lab
    torchaudio.functional.rnnt_loss(fe, y.int(), elens.int(), ylens.int(), fused_log_softmax=False,
                                    reduction="sum").backward()
    assert torch.allclose(b.grad[..., 0], a.grad[..., 0])
    assert torch.allclose((b.grad * lab).sum(), 1.5 * (a.grad * lab).sum())


def test_eot_penalty_only_after_reference_end():
    task = STSTask(**TINY_STS, eot_penalty=2.0, eot_tolerance=0.2)
    pen = task.eot_penalty_lattice([[(3, 1.0)], []], 60, 6)
    times = torch.tensor([task.net.frame_time(t) for t in range(60)])
    expect = 2.0 * (times - 1.2).clamp_min(0)
    assert torch.allclose(pen[0, :, 3], expect)
    assert pen[0, :, [0, 1, 2, 4, 5]].abs().sum() == 0 and pen[1].abs().sum() == 0
    # a late <eot> costs more: the penalised loss is larger
    v = task.net.tokenizer.vocab_size
    logits = torch.randn(1, 60, 5, v, generator=torch.Generator().manual_seed(1))
    eot = task.net.eot
    y = torch.tensor([[task.net.sot, 3, 4, eot]])
    kw = dict(elens=torch.tensor([60]), ylens=torch.tensor([4]))
    plain = task.rnnt_loss(logits, y, **kw)
    assert task.rnnt_loss(logits, y, eots=[[(3, 0.3)]], **kw) > plain
    assert torch.allclose(task.rnnt_loss(logits, y, eots=[[(3, 100.0)]], **kw), plain)


# --- turns, streaming, folders ----------------------------------------------------------------------
def test_channel_turns_parsing():
    net = make_sts(True)
    tok, ft = net.tokenizer, net.frame_time
    s, e = tok.token_id(SOT), tok.token_id(EOT)
    h = tok.encode("HI")
    tokens = [s, *h, e, *tok.encode("YO"), s, *tok.encode("NO")]
    frames = [1, 2, 3, 4, 10, 11, 20, 21, 22]
    assert net.channel_turns(0, tokens, frames, end_time=5.0) == [
        Turn(0, ft(1), ft(4), "HI"), Turn(0, ft(10), ft(20), "YO"), Turn(0, ft(20), 5.0, "NO")]
    assert net.channel_turns(1, tokens, frames, end_time=None)[-1] == Turn(1, ft(20), None, "NO")
    base = make_sts(False)
    base.turn_gap_s = 0.5
    toks = tok.encode("AB") + tok.encode("CD")
    fr = [0, 2, 40, 41]
    assert base.channel_turns(0, toks, fr, end_time=10.0) == [
        Turn(0, ft(0), ft(2) + 0.5, "AB"), Turn(0, ft(40), ft(41) + 0.5, "CD")]
    assert base.channel_turns(0, toks, fr, end_time=None, now=ft(41))[-1].end is None


@pytest.mark.parametrize("turn_tokens", [True, False])
def test_streaming_equals_batch(session, turn_tokens):
    wav, _ = session
    net = biased_sts(make_sts(turn_tokens))
    net.turn_gap_s = 0.3
    batch = net.transcribe([wav], sample_rate=16000)[0]
    assert batch and all(isinstance(t, Turn) and t.end is not None for t in batch)
    rng = random.Random(0)
    for chunk_ms in (40, 160, 370):
        s = net.stream(chunk_ms=chunk_ms)
        events, i = [], 0
        while i < wav.numel():
            n = rng.randint(100, 9000)
            r = s.accept_waveform(wav[i:i + n])
            assert all(t.end is None or t.end <= (i + n) / 16000 + 1e-6 for t in r.turns)
            events += r.events
            i += n
        r = s.finalize()
        events += r.events
        assert r.turns == batch, chunk_ms
        assert len(r.text) == 2
        starts = [(e.channel, e.time) for e in events if e.kind == "start"]
        ends = [(e.channel, e.time, e.text) for e in events if e.kind == "end"]
        assert sorted(starts) == sorted((t.channel, t.start) for t in batch)
        assert sorted(ends) == sorted((t.channel, t.end, t.text) for t in batch)


def test_save_load_round_trip(tmp_path, session):
    from zoo import from_pretrained
    from zoo.hub.cards import render_card
    from zoo.models.base import model_config, save_pretrained

    wav, _ = session
    for tt in (True, False):
        net = biased_sts(make_sts(tt))
        cfg = model_config(net)
        assert cfg["architecture"] == "sts" and cfg["model"]["turn_tokens"] is tt
        folder = save_pretrained(net, tmp_path / f"sts-{tt}", config=cfg, card=render_card("sts-tiny", cfg))
        again = from_pretrained(folder)
        assert isinstance(again, STSASR) and again.turn_tokens is tt
        assert again.transcribe([wav], sample_rate=16000) == net.transcribe([wav], sample_rate=16000)
    with pytest.raises(ValueError, match="turn_tokens"):
        STSASR(**TINY_STS, tokenizer=CharTokenizer(), turn_tokens=True)


def test_transcribe_cli_prints_turns(tmp_path, session, capsys):
    import soundfile as sf

    from zoo.cli.main import main
    from zoo.models.base import model_config, save_pretrained

    wav, _ = session
    net = biased_sts(make_sts(True))
    folder = save_pretrained(net, tmp_path / "sts", config=model_config(net))
    sf.write(tmp_path / "mix.wav", wav.numpy(), 16000)
    assert main(["transcribe", "--model", str(folder), str(tmp_path / "mix.wav")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    expect = net.transcribe([wav], sample_rate=16000)[0]
    assert len(lines) == len(expect)
    f = lines[0].split("\t")
    assert f[1] == str(expect[0].channel) and float(f[2]) == pytest.approx(expect[0].start, abs=0.01)
    assert main(["transcribe", "--model", str(folder), "--beam-size", "4", str(tmp_path / "mix.wav")]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("turn_tokens", ["true", "false"])
def test_fit_tiny_and_export(tmp_path, turn_tokens):
    from zoo.cli.main import main
    from zoo.hub import from_pretrained
    from zoo.hub.export import export_checkpoint

    root = tmp_path / "run"
    main(["fit", "--config", "configs/ci/sts_tiny.yaml", "--trainer.default_root_dir", str(root),
          "--trainer.enable_progress_bar", "false", "--model.init_args.turn_tokens", turn_tokens])
    ckpt = root / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    out = export_checkpoint(ckpt, tmp_path / "model")
    net = from_pretrained(out)
    assert isinstance(net, STSASR) and net.turn_tokens is (turn_tokens == "true")
    assert np.isfinite(net.featurizer.std.numpy()).all() and (net.featurizer.mean != 0).any()


def test_warm_start_from_a_single_speaker_transducer(tmp_path, session):
    """asr_init: the ASR encoder's LSTM layers are split between the mixture and recognition encoders, the
    separator starts as the identity on each channel, and featurizer, predictor and joiner are copied (token
    rows the ASR model lacks stay as they were). A mismatched split is a clear error."""
    from zoo.errors import ZooError
    from zoo.models.base import model_config, save_pretrained
    from zoo.models.sts import warm_start_from_transducer
    from zoo.models.transducer import TransducerASR

    torch.manual_seed(0)
    asr = TransducerASR({"name": "lstm", "stack": 4, "hidden": 32, "layers": 3, "dropout": 0.0},
                        {"embed_dim": 16, "hidden": 32}, {"joint_dim": 32}, {"n_mels": 40}, tokenizer=CharTokenizer())
    asr.featurizer.set_stats(torch.full((40,), -4.0), torch.full((40,), 2.5))
    enc = {"mixture": {"name": "lstm", "stack": 4, "hidden": 32, "layers": 2, "dropout": 0.0},
           "recognition": {"name": "lstm", "stack": 1, "hidden": 32, "layers": 1, "dropout": 0.0}}
    cfg = {**TINY_STS, "encoder": enc}
    sts = STSASR(**cfg, tokenizer=sts_tokenizer(True), turn_tokens=True)
    eot_row = sts.joiner.out.weight[sts.eot].clone()
    done = warm_start_from_transducer(sts, asr)
    assert len(done) == 5
    src = dict(asr.encoder.lstm.named_parameters())
    assert torch.equal(sts.encoder.mixture.lstm.weight_ih_l1, src["weight_ih_l1"])
    assert torch.equal(sts.encoder.recognition.lstm.weight_hh_l0, src["weight_hh_l2"])
    assert torch.equal(sts.featurizer.mean, asr.featurizer.mean)
    v = asr.joiner.out.weight.shape[0]
    assert torch.equal(sts.joiner.out.weight[:v], asr.joiner.out.weight)
    assert torch.equal(sts.joiner.out.weight[sts.eot], eot_row)  # <eot> row untouched
    assert torch.equal(sts.predictor.embed.weight[:v], asr.predictor.embed.weight)
    h = torch.randn(2, 5, 32)
    s = sts.encoder.separate(h).view(2, 2, 5, 32)
    assert torch.allclose(s, 0.5 * h[:, None].expand_as(s), rtol=0.1, atol=0.02)  # identity projection, mask ~0.5
    bad = STSASR(**TINY_STS, tokenizer=sts_tokenizer(True), turn_tokens=True)  # 1 + 1 layers of 32/24
    with pytest.raises(ZooError, match="layer for layer"):
        warm_start_from_transducer(bad, asr)
    # through the task (asr_init = a model folder): statistics come with it, no refit needed
    folder = save_pretrained(asr.eval(), tmp_path / "asr", config=model_config(asr))
    task = STSTask(encoder=enc, predictor=TINY_STS["predictor"], joiner=TINY_STS["joiner"],
                   featurizer=TINY_STS["featurizer"], asr_init=str(folder))
    assert task.stats_ready and torch.equal(task.net.featurizer.std, asr.featurizer.std)
    assert torch.equal(task.net.encoder.recognition.lstm.bias_ih_l0, src["bias_ih_l2"])


def test_warm_start_rejects_other_vocab_and_non_lstm_encoders():
    from zoo.errors import ZooError
    from zoo.models.sts import warm_start_from_transducer
    from zoo.models.transducer import TransducerASR

    enc = {"mixture": {"name": "lstm", "stack": 4, "hidden": 32, "layers": 1, "dropout": 0.0},
           "recognition": {"name": "lstm", "stack": 1, "hidden": 32, "layers": 1, "dropout": 0.0}}
    sts = STSASR(**{**TINY_STS, "encoder": enc}, tokenizer=sts_tokenizer(True), turn_tokens=True)
    lstm2 = {"name": "lstm", "stack": 4, "hidden": 32, "layers": 2, "dropout": 0.0}
    other_vocab = TransducerASR(lstm2, {"embed_dim": 16, "hidden": 32}, {"joint_dim": 32}, {"n_mels": 40},
                                tokenizer=CharTokenizer("ABC"))
    with pytest.raises(ZooError, match="characters differ"):
        warm_start_from_transducer(sts, other_vocab)
    conv = TransducerASR({"name": "cca_transformer", "stack": 4, "d_model": 32, "heads": 2, "ffn_dim": 48,
                          "layers": 2, "left_context": 16}, {"embed_dim": 16, "hidden": 32}, {"joint_dim": 32},
                         {"n_mels": 40}, tokenizer=CharTokenizer())
    with pytest.raises(ZooError, match="needs LSTM encoders; the ASR encoder is CCATransformerEncoder"):
        warm_start_from_transducer(sts, conv)
