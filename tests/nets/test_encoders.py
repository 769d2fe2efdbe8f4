"""Every registered streaming encoder: streamed == full on real AN4 audio, causality, batching; and the
paper-sized ConvRNN-T config runs a forward/backward step."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml

from zoo.models.transducer import TransducerASR
from zoo.nets import ENCODERS
from zoo.text import CharTokenizer

from helpers import TINY_ENCODERS, lively_net, randomize_zero_init, stream_encoder

REPO = Path(__file__).resolve().parents[2]
def test_every_encoder_is_covered():
    assert set(TINY_ENCODERS) == set(ENCODERS)


def _net(name: str, seed: int = 0) -> TransducerASR:
    torch.manual_seed(seed)
    net = TransducerASR(TINY_ENCODERS[name], {"embed_dim": 8, "hidden": 16}, {"joint_dim": 16},
                        {"n_mels": 40}, tokenizer=CharTokenizer()).eval()
    randomize_zero_init(net)
    net.featurizer.set_stats(torch.full((40,), -5.0), torch.full((40,), 3.0))
    with torch.no_grad():  # favour blank so a random net emits tens of tokens, not max_symbols per frame
        net.joiner.out.bias[0] += 2.0
    return net


def _feats(net, wav_paths):
    from zoo.audio import load_audio

    wavs = [load_audio(p, 16000) for p in wav_paths]
    lens = torch.tensor([w.numel() for w in wavs])
    feats, flens = net.featurizer(torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), lens)
    return feats, flens, wavs


@pytest.mark.parametrize("name", sorted(TINY_ENCODERS))
def test_streamed_encoder_equals_full(name, an4_wavs):
    net = _net(name)
    enc = net.encoder
    feats, flens, _ = _feats(net, an4_wavs[:1])
    t = int(flens[0]) // enc.subsampling * enc.subsampling
    with torch.no_grad():
        full, _ = enc(feats[:, :t], flens[:1])
        g = torch.Generator().manual_seed(3)
        for _ in range(3):
            sizes = [int(torch.randint(1, 12, (1,), generator=g)) * enc.subsampling for _ in range(t)]
            streamed = stream_encoder(enc, feats[:, :t], sizes)
            assert streamed.shape == full.shape
            assert (streamed - full).abs().max() <= 1e-4


@pytest.mark.parametrize("name", sorted(TINY_ENCODERS))
def test_future_frames_never_change_past_outputs(name, an4_wavs):
    net = _net(name)
    enc = net.encoder
    feats, flens, _ = _feats(net, an4_wavs[:1])
    t_out = int(flens[0]) // enc.subsampling
    k = t_out // 2  # perturb input from output frame k onwards
    x2 = feats.clone()
    x2[:, k * enc.subsampling:] += torch.randn_like(x2[:, k * enc.subsampling:])
    with torch.no_grad():
        a, _ = enc(feats, flens)
        b, _ = enc(x2, flens)
    # an output frame may see at most lookahead_frames input frames ahead of it
    la = -(-enc.lookahead_frames // enc.subsampling)
    safe = k - la
    assert safe > 0
    assert (a[:, :safe] - b[:, :safe]).abs().max() == 0
    assert (a[:, k:] - b[:, k:]).abs().max() > 1e-3  # and the change is visible later (test can fail)


@pytest.mark.parametrize("name", sorted(TINY_ENCODERS))
def test_batch_equals_single(name, an4_wavs):
    from zoo.audio import load_audio

    net = lively_net(load_audio(an4_wavs[0], 16000), encoder=name)
    paths = [str(p) for p in an4_wavs[:3]]
    batch = net.transcribe(paths, batch_size=3)
    single = [net.transcribe([p])[0] for p in paths]
    assert batch == single
    assert sum(len(b) for b in batch) > 0


def test_paper_sized_convrnnt_forward_backward():
    from zoo.tasks import TransducerTask

    cfg = yaml.safe_load((REPO / "configs/asr/convrnnt_librispeech.yaml").read_text())["model"]["init_args"]
    cfg = {k: v for k, v in cfg.items() if k not in ("optimizer", "scheduler")}
    cfg["tokenizer"] = {"type": "char"}  # the sentencepiece file needs LibriSpeech; the net is the same size
    task = TransducerTask(**cfg)
    n = sum(p.numel() for p in task.net.encoder.parameters())
    assert n > 20e6, n  # paper scale, not the CPU-sized one
    task.net.featurizer.set_stats(torch.zeros(80), torch.ones(80))
    batch = {"audio": torch.randn(2, 4000) * 0.1, "audio_lens": torch.tensor([4000, 3200]),
             "text": ["HI", "YO"]}
    loss, logs, _, _ = task._forward_loss(batch, augment=True)
    loss.backward()
    assert torch.isfinite(loss)
    assert task.net.encoder.local[0].conv.weight.grad.abs().sum() > 0
    assert task.net.encoder.blocks[-1].se.fc1.weight.grad.abs().sum() > 0


def test_cca_gated_inference_skips_work_and_matches_masked_forward(an4_wavs):
    """infer() runs MHA/FFN only on active frames, gives the masked forward's output, counts fewer FLOPs."""
    from zoo.nets.cca_transformer import CCATransformerEncoder
    from zoo.nets.encoder import stack_frames

    net = _net("cca_transformer")
    enc: CCATransformerEncoder = net.encoder
    feats, flens, _ = _feats(net, an4_wavs[:1])
    with torch.no_grad():
        for layer in enc.layers:  # about half the gates on
            layer.arbitrator.bias.zero_()
        full, _ = enc(feats, flens)
        g_forward = enc.last_gates.clone()
        frac = float(g_forward.mean())
        assert 0.2 < frac < 0.8
        x, _ = stack_frames(feats, flens, enc.subsampling)
        y, _, flops = enc.infer(x, enc.init_state(1))
        assert (y - full).abs().max() <= 1e-4
        assert torch.equal(enc.last_gates, g_forward)  # same gate decisions
        for layer in enc.layers:  # all gates on: more work, same code path
            layer.arbitrator.bias.fill_(50.0)
        _, _, dense = enc.infer(x, enc.init_state(1))
    assert flops < 0.9 * dense


def test_cca_compute_loss_is_differentiable():
    from zoo.tasks import TransducerTask

    task = TransducerTask(encoder=TINY_ENCODERS["cca_transformer"], predictor={"embed_dim": 8, "hidden": 16},
                          joiner={"joint_dim": 16}, featurizer={"n_mels": 40}, compute_weight=1.0)
    task.net.featurizer.set_stats(torch.zeros(40), torch.ones(40))
    task.train()
    batch = {"audio": torch.randn(2, 8000) * 0.1, "audio_lens": torch.tensor([8000, 6000]), "text": ["HI", "YO"]}
    loss, logs, _, _ = task._forward_loss(batch, augment=False)
    assert 0 < float(logs["compute_frac"]) < 1
    task.net.encoder.expected_compute(torch.tensor([5, 3])).backward()
    assert task.net.encoder.layers[0].arbitrator.weight.grad.abs().sum() > 0


def test_convrnnt_starts_as_the_lstm_baseline_and_uses_both_cnn_branches(an4_wavs):
    """Zero-initialised fusion: a fresh ConvRNN-T ignores its CNN branches (it is the LSTM baseline on the
    same normalised frames); once the fusion has weights, both the local and the global CNN change the output."""
    from zoo.nets import build_encoder

    torch.manual_seed(0)
    cfg = {k: v for k, v in TINY_ENCODERS["convrnnt"].items()}
    enc = build_encoder(cfg, 40).eval()
    feats = torch.randn(1, 64, 40)
    lens = torch.tensor([64])

    def out_after(perturb):
        e = copy.deepcopy(enc)
        with torch.no_grad():
            perturb(e)
            return e(feats, lens)[0]

    noop = lambda e: None  # noqa: E731
    local = lambda e: e.local[0].conv.weight.add_(torch.randn_like(e.local[0].conv.weight))  # noqa: E731
    glob = lambda e: e.blocks[0].pw2.weight.add_(torch.randn_like(e.blocks[0].pw2.weight))  # noqa: E731
    base = out_after(noop)
    assert torch.equal(out_after(local), base) and torch.equal(out_after(glob), base)
    randomize_zero_init(enc)
    base = out_after(noop)
    assert (out_after(local) - base).abs().max() > 1e-3
    assert (out_after(glob) - base).abs().max() > 1e-3
