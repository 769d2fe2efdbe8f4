"""Side-by-side benchmark of every released ASR model on AN4 test, in one run.

    python benchmarks/asr.py [--models a b ...] [--chunk-ms 160] [--threads 1]

Prints params, WER (greedy, 95% bootstrap CI over utterances), CER, streaming RTF at ``--threads``
threads, algorithmic latency and median first-partial latency, and ratios to lstm-rnnt-an4.

First-partial latency: audio is pushed in ``chunk_ms`` chunks as if live; for each utterance it is
(audio time at the end of the chunk whose result first has text + compute time spent up to then)
- speech onset, where onset is the first 10 ms frame within 30 dB of the utterance's loudest frame.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from zoo.audio import load_audio
from zoo.evaluate import load_eval_set, streaming_rtf
from zoo.hub import from_pretrained
from zoo.metrics import bootstrap_wer, error_rates
from zoo.registry import MODELS, bundled_folder

BASELINE = "lstm-rnnt-an4"


def speech_onset_s(wav: torch.Tensor, sr: int) -> float:
    hop = sr // 100
    frames = wav[: wav.numel() // hop * hop].reshape(-1, hop)
    db = 10 * torch.log10(frames.pow(2).mean(1) + 1e-10)
    return float((db > db.max() - 30).nonzero()[0, 0]) * hop / sr


def first_partial_latency_ms(model, wav: torch.Tensor, chunk_ms: float) -> float | None:
    s = model.stream(chunk_ms=chunk_ms)
    spent, pos = 0.0, 0
    for i in range(0, wav.numel(), s.chunk):
        t0 = time.perf_counter()
        r = s.accept_waveform(wav[i:i + s.chunk])
        spent += time.perf_counter() - t0
        pos = min(i + s.chunk, wav.numel())
        if r.text:
            return 1000 * (pos / model.sample_rate + spent - speech_onset_s(wav, model.sample_rate))
    t0 = time.perf_counter()
    r = s.finalize()
    spent += time.perf_counter() - t0
    if r.text:
        return 1000 * (wav.numel() / model.sample_rate + spent - speech_onset_s(wav, model.sample_rate))
    return None


def bench(name: str, items, chunk_ms: float) -> dict:
    model = from_pretrained(name)
    paths = [it["audio"] for it in items]
    refs = [it["text"] for it in items]
    norm = model.zoo_config.get("normalizer", "upper")
    hyps = model.transcribe(paths)
    er = error_rates(hyps, refs, norm)
    ci = bootstrap_wer(hyps, refs, norm)
    wavs = [load_audio(p, model.sample_rate) for p in paths]
    rtf = streaming_rtf(model, wavs, chunk_ms, threads=torch.get_num_threads())["rtf"]
    lat = [x for x in (first_partial_latency_ms(model, w, chunk_ms) for w in wavs) if x is not None]
    return {"name": name, "params": sum(p.numel() for p in model.parameters()), "wer": er["wer"], "cer": er["cer"],
            "low": ci["low"], "high": ci["high"], "rtf": rtf,
            "algo_ms": model.streaming_info(chunk_ms)["algorithmic_latency_ms"],
            "first_partial_ms": statistics.median(lat) if lat else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--chunk-ms", type=float, default=160.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = args.models or [n for n, m in MODELS.items() if m["task"] == "asr"
                            and (bundled_folder(n) / "config.json").is_file()]
    items = load_eval_set("an4", "test")
    rows = [bench(n, items, args.chunk_ms) for n in names]
    base = next((r for r in rows if r["name"] == BASELINE), None)
    print(f"AN4 test ({len(items)} utterances), {args.threads} thread(s), {args.chunk_ms:.0f} ms chunks, greedy")
    print(f"{'model':<20} {'params':>9} {'WER %':>6} {'95% CI':>13} {'CER %':>6} {'RTF':>7} {'algo ms':>8} "
          f"{'1st partial ms':>14} {'WER x':>6} {'RTF x':>6}")
    for r in rows:
        wr = f"{r['wer'] / base['wer']:.2f}" if base and base["wer"] else "-"
        rr = f"{r['rtf'] / base['rtf']:.2f}" if base else "-"
        print(f"{r['name']:<20} {r['params'] / 1e6:>8.2f}M {100 * r['wer']:>6.2f} "
              f"{100 * r['low']:>6.2f}-{100 * r['high']:<6.2f} {100 * r['cer']:>6.2f} {r['rtf']:>7.4f} "
              f"{r['algo_ms']:>8.0f} {r['first_partial_ms']:>14.0f} {wr:>6} {rr:>6}")


if __name__ == "__main__":
    main()
