"""Evaluate an ASR model on a corpus split or manifest: WER/CER (greedy and beam) with bootstrap CIs,
streaming real-time factor at one thread, algorithmic latency. Items keep the speakers' metadata (gender, age
group, native language, ...) for fairness analyses; the narrow-band eval reads each file at 8 kHz."""
from __future__ import annotations

import time

import torch

from zoo.audio import load_audio, prepare_waveform
from zoo.data.items import load_items
from zoo.errors import ZooError
from zoo.metrics.wer import bootstrap_wer, error_rates

NARROWBAND_RATE = 8000
EVAL_CORPORA = ("an4", "speechocean762", "alphanumeric")
# The named test sets of the benchmark and the release cards: name -> load_eval_set kwargs.
TEST_SETS = {
    "an4": {"corpus": "an4", "split": "test"},
    "speechocean762": {"corpus": "speechocean762", "split": "test"},
    "alphanumeric": {"corpus": "alphanumeric", "split": "test"},
    "an4-8k": {"corpus": "an4", "split": "test", "sample_rate": NARROWBAND_RATE},
}


def load_eval_set(corpus: str | None = "an4", split: str = "test", manifest: str | None = None,
                  data_dir: str | None = None, sample_rate: int | None = None) -> list[dict]:
    """Evaluation items from a corpus recipe split (``zoo.data.corpora.corpus_cuts``) or a NeMo JSONL manifest.

    Each item: ``{"id", "audio": path, "text": ref, "speaker", "duration", "gender", "language", "corpus",
    ...}`` plus every field of the supervision's ``custom`` metadata (speechocean762: ``age``, ``age_group``;
    alphanumeric: ``kind``, ``nationality``, ``native_language``, ``lat``, ``lon``, ...); from a manifest, its
    extra keys. ``sample_rate`` (e.g. 8000, the narrow-band eval) is recorded on every item as
    ``"sample_rate"``: the audio is then read at that rate and handed to the model at that rate (the model
    resamples to its own, as ``transcribe`` does for any input); see :func:`load_item_audio`.
    """
    if sample_rate is not None and sample_rate <= 0:
        raise ZooError(f"sample rate must be positive (got {sample_rate})")
    items = load_items(corpus, split, manifest, data_dir, require_text=True)
    if sample_rate is not None:
        for it in items:
            it["sample_rate"] = int(sample_rate)
    return items


def load_item_audio(item: dict, target_rate: int) -> torch.Tensor:
    """The (S,) waveform of an eval item at ``target_rate``: read at the item's ``sample_rate`` when it has one
    (narrow band: the file resampled down to 8 kHz), then resampled to ``target_rate``."""
    rate = item.get("sample_rate")
    span = (item.get("offset") or 0.0, item.get("duration")) if item.get("offset") else ()
    if rate is None or rate == target_rate:
        return load_audio(item["audio"], target_rate, *span)
    return prepare_waveform(load_audio(item["audio"], rate, *span), rate, target_rate, name=str(item["audio"]))


def transcribe_items(model, items: list[dict], beam_size: int = 1, progress: bool = False,
                     group: int = 64, **fusion) -> list[str]:
    """``model.transcribe`` over eval items, in order. Whole files without ``sample_rate`` go in as paths; the
    others (segments with an offset, or a ``sample_rate``) as waveforms at their rate with ``sample_rate=``
    (``group`` at a time, so long sets stay small in memory). ``fusion``: LM shallow-fusion options of
    ``model.transcribe`` (``lm``, ``lm_weight``, ``length_bonus``), passed through when given."""
    out: list[str | None] = [None] * len(items)
    items = [it if it.get("sample_rate") is not None or not it.get("offset")
             else {**it, "sample_rate": model.sample_rate} for it in items]
    plain = [i for i, it in enumerate(items) if it.get("sample_rate") is None]
    if plain:
        for i, h in zip(plain, model.transcribe([items[i]["audio"] for i in plain], beam_size=beam_size,
                                                progress=progress, **fusion)):
            out[i] = h
    by_rate: dict[int, list[int]] = {}
    for i, it in enumerate(items):
        if it.get("sample_rate") is not None:
            by_rate.setdefault(int(it["sample_rate"]), []).append(i)
    for rate, idx in by_rate.items():
        for k in range(0, len(idx), group):
            part = idx[k:k + group]
            wavs = [load_audio(items[i]["audio"], rate) for i in part]
            for i, h in zip(part, model.transcribe(wavs, sample_rate=rate, beam_size=beam_size, **fusion)):
                out[i] = h
    return out


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


@torch.inference_mode()
def encode_items(model, items: list[dict]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each item's encoder output ((1, T', D), (1,)), one utterance at a time: for scripts that decode the same
    audio many times (decoding-setting grids) without re-running the encoder."""
    out = []
    for it in items:
        wav = load_item_audio(it, model.sample_rate)
        out.append(model.encode(wav[None], torch.tensor([wav.numel()])))
    return out


@torch.inference_mode()
def decode_encoded(model, encs: list[tuple[torch.Tensor, torch.Tensor]], beam: int, **settings) -> list[str]:
    """Texts of ``encode_items`` outputs, decoded with ``model.decode(..., beam, **settings)``."""
    return [model.tokenizer.decode(model.decode(enc, lens, beam, **settings)[0]) for enc, lens in encs]


def evaluate_asr(model, items: list[dict], beam_size: int = 4, chunk_ms: float = 160.0, n_boot: int = 1000,
                 progress: bool = False, stream: bool = True) -> dict:
    """All headline numbers of an ASR model on ``items`` (see ``load_eval_set``); ``stream=False`` skips the
    streaming pass (RTF, stream == batch), e.g. on long sets where the AN4 test measurement suffices."""
    normalizer = model.normalizer
    refs = [it["text"] for it in items]
    spk = [it.get("speaker") or str(i) for i, it in enumerate(items)]
    rates = sorted({it["sample_rate"] for it in items if it.get("sample_rate") is not None})
    out: dict = {"utterances": len(items), "normalizer": normalizer, "input_sample_rates": rates or None}
    hyps_by = {}
    for name, beam in (("greedy", 1), (f"beam{beam_size}", beam_size)):
        hyps = transcribe_items(model, items, beam_size=beam, progress=progress)
        hyps_by[name] = hyps
        er = error_rates(hyps, refs, normalizer)
        out[name] = {**er, "ci_utt": bootstrap_wer(hyps, refs, normalizer, n=n_boot),
                     "ci_spk": bootstrap_wer(hyps, refs, normalizer, n=n_boot, groups=spk)}
    if stream:
        wavs = [load_item_audio(it, model.sample_rate) for it in items]
        rtf = streaming_rtf(model, wavs, chunk_ms)
        out["stream"] = {k: v for k, v in rtf.items() if k != "texts"}
        out["stream"]["equals_batch_greedy"] = (sum(a == b for a, b in zip(rtf["texts"], hyps_by["greedy"]))
                                                / len(items))
    out["streaming"] = model.streaming_info(chunk_ms)
    settings = {"greedy": model.decoding_defaults(1), f"beam{beam_size}": model.decoding_defaults(beam_size)}
    if any(settings.values()):
        out["decoding_settings"] = settings
    out["num_parameters"] = sum(p.numel() for p in model.parameters())
    out["hyps"] = hyps_by
    return out


def format_report(name: str, split: str, r: dict) -> str:
    rates = r.get("input_sample_rates")
    band = f", audio at {'/'.join(f'{x / 1000:g}' for x in rates)} kHz" if rates else ""
    lines = [f"model {name} on {split} ({r['utterances']} utterances{band}, normaliser '{r['normalizer']}')",
             f"{'decoding':<10} {'WER %':>7} {'95% CI (utt)':>16} {'95% CI (spk)':>16} {'CER %':>7}"]
    for k in [k for k in r if k == "greedy" or k.startswith("beam")]:
        v = r[k]
        ci = v['ci_utt']
        lines.append(f"{k:<10} {100 * v['wer']:>7.2f} {100 * ci['low']:>7.2f}-{100 * ci['high']:<7.2f} "
                     f"{100 * v['ci_spk']['low']:>7.2f}-{100 * v['ci_spk']['high']:<7.2f} {100 * v['cer']:>7.2f}")
    if r.get("decoding_settings"):
        lines.append("the model's decoding settings (config.json, chosen on dev): " + "; ".join(
            f"{mode} " + (", ".join(f"{k} {v:g}" for k, v in d.items()) or "plain")
            for mode, d in r["decoding_settings"].items()))
    s = r.get("stream")
    if s is None:
        lines.append(f"parameters: {r['num_parameters']:,}")
        return "\n".join(lines)
    lines.append(f"streaming: RTF {s['rtf']:.4f} at {s['threads']} thread, {s['chunk_ms']:.0f} ms chunks; "
                 f"algorithmic latency {r['streaming']['algorithmic_latency_ms']:.0f} ms; "
                 f"stream text == batch greedy on {100 * s['equals_batch_greedy']:.0f}% of utterances")
    lines.append(f"parameters: {r['num_parameters']:,}")
    return "\n".join(lines)
