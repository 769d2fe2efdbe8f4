"""Evaluate an ASR model on a corpus split or manifest: WER/CER (greedy and beam) with bootstrap CIs,
streaming real-time factor at one thread, algorithmic latency."""
from __future__ import annotations

import time

import torch

from zoo.audio import load_audio
from zoo.metrics import bootstrap_wer, error_rates


def load_eval_set(corpus: str | None = "an4", split: str = "test", manifest: str | None = None,
                  data_dir: str | None = None) -> list[dict]:
    """[{"audio": path, "text": ref, "speaker": spk, "duration": s}] from a recipe split or a manifest."""
    if manifest:
        from zoo.data.manifest import read_manifest

        return [{"audio": e["audio_filepath"], "text": e.get("text", ""), "speaker": e.get("speaker"),
                 "duration": e.get("duration")} for e in read_manifest(manifest)]
    from zoo.data.an4 import an4_cuts

    cuts = an4_cuts(data_dir)[split]
    return [{"audio": c.recording.sources[0].source, "text": c.supervisions[0].text,
             "speaker": c.supervisions[0].speaker, "duration": c.duration} for c in cuts]


def streaming_rtf(model, wavs: list[torch.Tensor], chunk_ms: float = 160.0, threads: int = 1,
                  progress: bool = False) -> dict:
    """Stream every waveform chunk by chunk at ``threads`` threads; RTF = compute time / audio time."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        total_audio = sum(w.numel() for w in wavs) / model.sample_rate
        it = wavs
        if progress:
            from rich.progress import track
            it = track(wavs, description="streaming", transient=True)
        t0 = time.perf_counter()
        texts = [model.stream_transcribe(w, chunk_ms) for w in it]
        dt = time.perf_counter() - t0
    finally:
        torch.set_num_threads(old)
    return {"rtf": dt / total_audio, "audio_s": total_audio, "compute_s": dt, "threads": threads,
            "chunk_ms": chunk_ms, "texts": texts}


def evaluate_asr(model, items: list[dict], beam_size: int = 4, chunk_ms: float = 160.0, n_boot: int = 1000,
                 progress: bool = False) -> dict:
    """All headline numbers of an ASR model on ``items`` (see ``load_eval_set``)."""
    normalizer = getattr(model, "zoo_config", {}).get("normalizer", "upper")
    refs = [it["text"] for it in items]
    spk = [it.get("speaker") or str(i) for i, it in enumerate(items)]
    paths = [it["audio"] for it in items]
    out: dict = {"utterances": len(items), "normalizer": normalizer}
    hyps_by = {}
    for name, beam in (("greedy", 1), (f"beam{beam_size}", beam_size)):
        hyps = model.transcribe(paths, beam_size=beam, progress=progress)
        hyps_by[name] = hyps
        er = error_rates(hyps, refs, normalizer)
        out[name] = {**er, "ci_utt": bootstrap_wer(hyps, refs, normalizer, n=n_boot),
                     "ci_spk": bootstrap_wer(hyps, refs, normalizer, n=n_boot, groups=spk)}
    wavs = [load_audio(p, model.sample_rate) for p in paths]
    rtf = streaming_rtf(model, wavs, chunk_ms)
    out["stream"] = {k: v for k, v in rtf.items() if k != "texts"}
    out["stream"]["equals_batch_greedy"] = sum(a == b for a, b in zip(rtf["texts"], hyps_by["greedy"])) / len(items)
    out["streaming"] = model.streaming_info(chunk_ms)
    out["num_parameters"] = sum(p.numel() for p in model.parameters())
    out["hyps"] = hyps_by
    return out


def format_report(name: str, split: str, r: dict) -> str:
    lines = [f"model {name} on {split} ({r['utterances']} utterances, normaliser '{r['normalizer']}')",
             f"{'decoding':<10} {'WER %':>7} {'95% CI (utt)':>16} {'95% CI (spk)':>16} {'CER %':>7}"]
    for k in [k for k in r if k == "greedy" or k.startswith("beam")]:
        v = r[k]
        lines.append(f"{k:<10} {100 * v['wer']:>7.2f} {100 * v['ci_utt']['low']:>7.2f}-{100 * v['ci_utt']['high']:<7.2f} "
                     f"{100 * v['ci_spk']['low']:>7.2f}-{100 * v['ci_spk']['high']:<7.2f} {100 * v['cer']:>7.2f}")
    s = r["stream"]
    lines.append(f"streaming: RTF {s['rtf']:.4f} at {s['threads']} thread, {s['chunk_ms']:.0f} ms chunks; "
                 f"algorithmic latency {r['streaming']['algorithmic_latency_ms']:.0f} ms; "
                 f"stream text == batch greedy on {100 * s['equals_batch_greedy']:.0f}% of utterances")
    lines.append(f"parameters: {r['num_parameters']:,}")
    return "\n".join(lines)
