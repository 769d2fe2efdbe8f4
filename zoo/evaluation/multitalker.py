"""Evaluate a multi-talker model (an STS, architecture ``sts``) on fixed two-speaker sessions: cpWER and
ORC-WER with session-bootstrap CIs, turn-counting accuracy (+ CI), start/end-of-turn emission latency,
each overall and by overlap bin; batch ``transcribe`` vs the streaming session (agreement rate) and the
streaming real-time factor at one thread. Used by ``zoo evaluate``, the release script and
``benchmarks/multitalker.py``.

The default evaluation set is the fixed AN4 mixture test set: the sessions ``zoo data an4-mix`` writes
(200 sessions of AN4 test speakers, seed 0) and the DataModule's default test split; without a manifest it
is regenerated on the fly, deterministically (same audio sample for sample).
"""
from __future__ import annotations

from pathlib import Path

import torch

from zoo.errors import ZooError
from zoo.evaluation.asr import streaming_rtf
from zoo.metrics.multitalker import evaluate_sessions, format_sessions_report
from zoo.text import get_normalizer

MULTITALKER_TASK = "multitalker-asr"


def is_multitalker(model) -> bool:
    return model.task == MULTITALKER_TASK


def eval_set_name(manifest: str | None = None, split: str = "test", seed: int | None = None) -> str:
    """A short description of the evaluation set, for reports and cards."""
    from zoo.data.mix import AN4_MIX_DEV, AN4_MIX_TEST

    if manifest:
        return str(manifest)
    d = AN4_MIX_TEST if split == "test" else AN4_MIX_DEV
    return f"an4-mix {split}, seed {d['seed'] if seed is None else seed}"


def load_mix_sessions(manifest: str | None = None, split: str = "test", sessions: int | None = None,
                      seed: int | None = None, data_dir: str | None = None) -> list[dict]:
    """``[{"id", "cut", "turns"}]``: the sessions of a ``zoo data an4-mix`` manifest, or the fixed AN4
    mixture set of ``split`` (``test``: AN4 test speakers; ``dev``) generated on the fly.
    ``turns``: (speaker, start s, end s, text) in start order."""
    from zoo.data.mix import cut_turns, fixed_sessions, is_mix_manifest, read_mix_manifest

    if manifest:
        if sessions is not None or seed is not None:
            raise ZooError("--sessions / --seed generate the fixed set; they do not apply with --manifest")
        p = Path(manifest)
        if not p.is_file():
            raise ZooError(f"manifest not found: {p}")
        if not is_mix_manifest(p):
            raise ZooError(f"{p} is not a two-speaker session manifest (one JSON line per session with 'turns'; "
                           "`zoo data an4-mix --out DIR` writes one)")
        cuts = read_mix_manifest(p)
    else:
        if split not in ("test", "dev"):
            raise ZooError(f"two-speaker sessions exist for the test and dev splits only (got {split!r})")
        if sessions is not None and sessions < 1:
            raise ZooError(f"--sessions must be at least 1 (got {sessions})")
        from zoo.data.an4 import an4_cuts

        cuts = fixed_sessions(an4_cuts(data_dir)[split], split, sessions, seed)
    return [{"id": c.id, "cut": c, "turns": cut_turns(c)} for c in cuts]


def session_audio(items: list[dict], sample_rate: int) -> list[torch.Tensor]:
    """The mixed waveform (S,) of each session at ``sample_rate``."""
    out = []
    for it in items:
        c = it["cut"] if it["cut"].sampling_rate == sample_rate else it["cut"].resample(sample_rate)
        out.append(torch.from_numpy(c.load_audio()[0]).float())
    return out


def _turns(turns, norm) -> list[list]:
    return [[t[0], float(t[1]), float(t[2]), norm(t[3])] for t in turns]


def evaluate_multitalker(model, items: list[dict], chunk_ms: float = 160.0, n_boot: int = 1000,
                         threads: int = 1, progress: bool = False) -> dict:
    """All headline numbers of a multi-talker model on ``items`` (see :func:`load_mix_sessions`).

    Scores the batch ``transcribe`` turns (greedy); every session is also streamed in ``chunk_ms`` chunks at
    ``threads`` threads (RTF), and ``stream.equals_batch`` is the fraction of sessions whose streamed turns
    equal the batch turns exactly. Texts of both sides go through the model's normaliser.
    """

    if not is_multitalker(model):
        raise ZooError(f"not a multi-talker model (its task is {getattr(model, 'task', 'asr')!r})")
    if not items:
        raise ZooError("no sessions to evaluate")
    normalizer = model.normalizer
    norm = get_normalizer(normalizer)
    wavs = session_audio(items, model.sample_rate)
    batch = model.transcribe(wavs, sample_rate=model.sample_rate, progress=progress)
    rtf = streaming_rtf(model, wavs, chunk_ms, threads=threads, progress=progress)
    stream = rtf.pop("texts")
    refs = [_turns(it["turns"], norm) for it in items]
    hyps = [_turns(h, norm) for h in batch]
    out: dict = {"sessions": len(items), "normalizer": normalizer}
    out.update(evaluate_sessions(refs, hyps, n_boot=n_boot))
    out["target_floor"] = target_floor(items, norm)
    out["stream"] = {**rtf, "equals_batch": sum(list(a) == list(b) for a, b in zip(stream, batch)) / len(items)}
    out["streaming"] = model.streaming_info(chunk_ms)
    out["num_parameters"] = sum(p.numel() for p in model.parameters())
    out["n_boot"] = n_boot
    out["ids"] = [it["id"] for it in items]
    out["refs"] = refs
    out["hyps"] = hyps
    out["stream_hyps"] = [_turns(h, norm) for h in stream]
    return out


def target_floor(items: list[dict], norm=str) -> dict:
    """cpWER / ORC-WER of a *perfect* transcript laid out like the training targets: each reference turn on
    the channel that overlap-based assignment gives it (``zoo.tasks.sts.assign_channels``). Channels are not
    speakers, so a channel that carries both speakers' turns costs cpWER even when every word is right;
    ORC-WER of this layout is 0. ``{"cpwer", "orcwer", "by_overlap": {bin: cpwer}}``."""
    from zoo.tasks.sts import assign_channels

    refs = [_turns(it["turns"], norm) for it in items]
    lay = [[[c, *t[1:]] for c, t in zip(assign_channels(r), r)] for r in refs]
    r = evaluate_sessions(refs, lay)
    return {"cpwer": r["all"]["cpwer"]["wer"], "orcwer": r["all"]["orcwer"]["wer"],
            "by_overlap": {k: v["cpwer"]["wer"] for k, v in r["by_overlap"].items()}}


def headline(r: dict) -> str:
    a = r["all"]
    return (f"cpWER {100 * a['cpwer']['wer']:.2f}% / ORC-WER {100 * a['orcwer']['wer']:.2f}% "
            "(AN4 2-speaker mix test, greedy)")


def format_multitalker_report(name: str, eval_set: str, r: dict) -> str:

    s = r["stream"]
    lines = [format_sessions_report(f"model {name} on {eval_set} ({r['sessions']} sessions; normaliser "
                                    f"'{r['normalizer']}'; 95% CIs: {r['n_boot']} bootstrap resamples of sessions; "
                                    "latency = emitted - reference time)", r),
             f"streaming: RTF {s['rtf']:.4f} at {s['threads']} thread, {s['chunk_ms']:.0f} ms chunks; "
             f"algorithmic latency {r['streaming']['algorithmic_latency_ms']:.0f} ms; "
             f"streamed turns == batch turns on {100 * s['equals_batch']:.0f}% of sessions",
             f"a perfect transcript on overlap-assigned channels (the training targets) scores cpWER "
             f"{100 * r['target_floor']['cpwer']:.2f}% (channels are not speakers; its ORC-WER is "
             f"{100 * r['target_floor']['orcwer']:.2f}%)",
             f"parameters: {r['num_parameters']:,}"]
    return "\n".join(lines)
