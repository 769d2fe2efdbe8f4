"""Side-by-side benchmark of every released ASR model and the pocketsphinx peers on four eval sets, in one run.

    python benchmarks/asr.py [--models a b ...] [--sets an4 speechocean762 alphanumeric an4-8k] [--limit N]
                             [--peers pocketsphinx pocketsphinx-generic | --no-peers] [--peer-lm domain|joint]
                             [--chunk-ms 160] [--threads 1] [--n-boot 1000] [--json out.json]

Eval sets: ``an4`` AN4 test (130 utterances), ``speechocean762`` speechocean762 test (2,500 utterances, ~3 h:
a full run is long), ``alphanumeric`` names + phone numbers (140 recordings; references are the *prompts*),
``an4-8k`` AN4 test read at 8 kHz (telephone band) and handed to each system at 8 kHz (zoo models resample to
16 kHz as ``transcribe`` does for any rate; pocketsphinx gets the same 8 kHz round trip at 16 kHz).
``--limit N`` keeps the first N utterances of each set (quick runs, tests).

Rows: every released ASR model (``zoo.hub.registry``: task ``asr``, bundled, not superseded; or ``--models``),
greedy, no external LM; plus the peers (``zoo.evaluation.peers.PocketsphinxPeer``, skipped with a note when the optional
extra ``zoo[peers]`` is not installed): ``pocketsphinx`` (bundled en-us acoustic model, trigram LM from the
training transcripts of the set's domain, an4.dic / corpus lexicon / CMUdict: on AN4 the issue's 11.5%
reference; ``--peer-lm joint``: one LM from AN4 + speechocean762 transcripts) and ``pocketsphinx-generic`` (the
same acoustic model with its bundled general-English LM and CMUdict, as installed; RTF ~0.3, the slowest row
on speechocean762). ``--peers`` picks them.

Per system and set: WER with a 95% bootstrap CI over utterances (``zoo.metrics.wer``, after the "upper" normaliser)
and its ratio to the best peer's WER on that set (the lowest of the peer rows). Per system, on AN4 test (or the
first chosen set): streaming RTF at ``--threads`` threads (pocketsphinx is single-threaded) and median
first-partial latency.

First-partial latency: audio is pushed in ``chunk_ms`` chunks as if live; for each utterance it is
(audio time at the end of the chunk whose result first has text + compute time spent up to then)
- speech onset, where onset is the first 10 ms frame within 30 dB of the utterance's loudest frame.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from zoo.evaluation.asr import TEST_SETS, load_eval_set, load_item_audio, streaming_rtf, transcribe_items
from zoo.metrics.wer import bootstrap_wer, error_rates

# name -> (title, load_eval_set kwargs)
SETS = {k: (title, TEST_SETS[k]) for k, title in (
    ("an4", "AN4 test"), ("speechocean762", "speechocean762 test"),
    ("alphanumeric", "alphanumeric names+numbers (prompt refs)"), ("an4-8k", "AN4 test at 8 kHz"))}
PEERS = ("pocketsphinx", "pocketsphinx-generic")
NORMALIZER = "upper"


def speech_onset_s(wav: torch.Tensor, sr: int) -> float:
    hop = sr // 100
    frames = wav[: wav.numel() // hop * hop].reshape(-1, hop)
    db = 10 * torch.log10(frames.pow(2).mean(1) + 1e-10)
    return float((db > db.max() - 30).nonzero()[0, 0]) * hop / sr


def _text(r) -> str:
    return r if isinstance(r, str) else r.text


def first_partial_latency_ms(session, wav: torch.Tensor, sr: int, chunk: int) -> tuple[float | None, float]:
    """Push ``wav`` through a streaming ``session`` (``accept_waveform`` / ``finalize``, results with text) in
    ``chunk``-sample pieces. Returns (first-partial latency in ms or None if no text at all, total compute s)."""
    spent, latency = 0.0, None
    for i in range(0, wav.numel(), chunk):
        t0 = time.perf_counter()
        r = session.accept_waveform(wav[i:i + chunk])
        spent += time.perf_counter() - t0
        if latency is None and _text(r):
            latency = 1000 * (min(i + chunk, wav.numel()) / sr + spent - speech_onset_s(wav, sr))
    t0 = time.perf_counter()
    r = session.finalize()
    spent += time.perf_counter() - t0
    if latency is None and _text(r):
        latency = 1000 * (wav.numel() / sr + spent - speech_onset_s(wav, sr))
    return latency, spent


def score(hyps: list[str], items: list[dict], n_boot: int) -> dict:
    refs = [it["text"] for it in items]
    er = error_rates(hyps, refs, NORMALIZER)
    ci = bootstrap_wer(hyps, refs, NORMALIZER, n=n_boot)
    return {"wer": er["wer"], "cer": er["cer"], "low": ci["low"], "high": ci["high"], "utterances": len(items),
            "words": er["words"]}


def bench_model(name: str, sets: dict, timing_set: str, chunk_ms: float, threads: int, n_boot: int,
                beam_size: int = 1) -> dict:
    from zoo.hub import from_pretrained

    model = from_pretrained(name)
    row = {"name": name, "params": sum(p.numel() for p in model.parameters()), "sets": {}, "beam_size": beam_size,
           "decoding": model.decoding_defaults(beam_size)}
    for key, items in sets.items():
        t0 = time.perf_counter()
        row["sets"][key] = score(transcribe_items(model, items, beam_size=beam_size), items, n_boot)
        _log(f"{name} on {key}: WER {100 * row['sets'][key]['wer']:.2f}% ({time.perf_counter() - t0:.0f} s)")
    wavs = [load_item_audio(it, model.sample_rate) for it in sets[timing_set]]
    row["rtf"] = streaming_rtf(model, wavs, chunk_ms, threads=threads)["rtf"]
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        lat = []
        for w in wavs:
            s = model.stream(chunk_ms=chunk_ms)
            lat.append(first_partial_latency_ms(s, w, model.sample_rate, s.chunk)[0])
    finally:
        torch.set_num_threads(old)
    lat = [x for x in lat if x is not None]
    row["algo_ms"] = model.streaming_info(chunk_ms)["algorithmic_latency_ms"]
    row["first_partial_ms"] = statistics.median(lat) if lat else float("nan")
    return row


# --peer-lm domain: each set is decoded with the LM of its own domain's training transcripts (alphanumeric and
# the 8 kHz set are AN4's domain: spelled letters and digit strings, as in the issue's peer numbers)
DOMAIN_LM = {"an4": ("an4",), "an4-8k": ("an4",), "alphanumeric": ("an4",), "speechocean762": ("speechocean762",)}


def bench_pocketsphinx(name: str, sets: dict, timing_set: str, chunk_ms: float, n_boot: int, data_dir=None,
                       lm: str = "domain", group: int = 64) -> dict:
    from zoo.evaluation.peers import DEFAULT_CORPORA, PocketsphinxPeer

    generic = name == "pocketsphinx-generic"
    cache: dict[tuple, PocketsphinxPeer] = {}

    def peer_for(key: str) -> PocketsphinxPeer:
        corpora = () if generic else (DOMAIN_LM[key] if lm == "domain" else tuple(DEFAULT_CORPORA))
        if corpora not in cache:
            cache[corpora] = PocketsphinxPeer(data_dir=data_dir, corpora=corpora or DEFAULT_CORPORA,
                                              generic_lm=generic)
        return cache[corpora]

    row = {"name": name, "params": None, "sets": {}, "algo_ms": None, "lm": {}}
    for key, items in sets.items():
        peer = peer_for(key)
        row["lm"][key] = {"corpora": list(peer.corpora), "lm": str(peer.lm_path), "dict": str(peer.dict_path)}
        t0, hyps = time.perf_counter(), []
        for k in range(0, len(items), group):
            hyps += peer.transcribe([load_item_audio(it, peer.sample_rate).numpy() for it in items[k:k + group]])
        row["sets"][key] = score(hyps, items, n_boot)
        _log(f"{name} on {key}: WER {100 * row['sets'][key]['wer']:.2f}% ({time.perf_counter() - t0:.0f} s)")
    peer = peer_for(timing_set)
    sr = peer.sample_rate
    chunk = int(round(chunk_ms * sr / 1000))
    lat, spent, audio_s = [], 0.0, 0.0
    for it in sets[timing_set]:
        w = load_item_audio(it, sr)
        x, dt = first_partial_latency_ms(peer.stream(), w, sr, chunk)
        lat.append(x)
        spent += dt
        audio_s += w.numel() / sr
    lat = [x for x in lat if x is not None]
    row["rtf"] = spent / audio_s
    row["first_partial_ms"] = statistics.median(lat) if lat else float("nan")
    return row


def released_asr_models() -> list[str]:
    from zoo.hub.registry import MODELS, bundled_folder

    return [n for n, m in MODELS.items() if m["task"] == "asr" and not m.get("superseded_by")
            and (bundled_folder(n) / "config.json").is_file()]


def format_tables(rows: list[dict], sets: dict, timing_set: str, args) -> str:
    peers = [r for r in rows if r["name"] in PEERS]
    best = {k: min((p["sets"][k]["wer"] for p in peers), default=None) for k in sets}
    lim = f", first {args.limit} per set" if args.limit else ""
    lines = [f"Eval sets{lim}:"] + [f"  {k:<15} {SETS[k][0]} ({len(v)} utts)" for k, v in sets.items()]
    how = (("greedy" if args.beam_size == 1 else f"beam {args.beam_size}") + " with each model's config.json "
           "decoding settings (internal-LM subtraction, length bonus; chosen on dev) where it ships them")
    lines.append(f"WER % [95% CI over utterances], {how}, no external LM for zoo models; "
                 "x = WER / best peer WER on that set")
    width = max([24] + [len(r["name"]) for r in rows])
    head = f"{'model':<{width}} {'params':>7}"
    for k in sets:
        head += f"  {k:<22} {'x':>5}"
    lines.append(head)
    for r in rows:
        params = f"{r['params'] / 1e6:.2f}M" if r["params"] else "-"
        line = f"{r['name']:<{width}} {params:>7}"
        for k in sets:
            s = r["sets"][k]
            ratio = f"{s['wer'] / best[k]:.2f}" if best[k] else "-"
            ci = f"[{100 * s['low']:.2f}-{100 * s['high']:.2f}]"
            line += f"  {100 * s['wer']:>6.2f} {ci:<15} {ratio:>5}"
        lines.append(line)
    n = len(sets[timing_set])
    single = " (pocketsphinx: 1)" if peers else ""
    lines += ["", f"Streaming on {SETS[timing_set][0]} ({n} utts), {args.threads} thread(s){single}, "
              f"{args.chunk_ms:.0f} ms chunks",
              f"{'model':<{width}} {'RTF':>7} {'algo ms':>8} {'1st partial ms':>15}"]
    for r in rows:
        algo = f"{r['algo_ms']:.0f}" if r["algo_ms"] is not None else "-"
        lines.append(f"{r['name']:<{width}} {r['rtf']:>7.4f} {algo:>8} {r['first_partial_ms']:>15.0f}")
    return "\n".join(lines)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def same_decoding(name: str, row: dict, beam_size: int) -> bool:
    """Whether an earlier row of a zoo model was decoded as it would be now (beam size, shipped settings)."""
    from zoo.hub import from_pretrained

    if row.get("beam_size", 1) != beam_size:
        return False
    try:
        return from_pretrained(name).decoding_defaults(beam_size) == row.get("decoding", {})
    except Exception:  # noqa: BLE001  (a model that no longer loads is measured again, and fails there)
        return False


def load_reused_rows(path: str, sets: dict, args) -> dict[str, dict]:
    """Rows of an earlier ``--json`` run, by system name; refused unless it measured the same sets, utterance
    counts, limit, chunk size and threads."""
    from zoo.errors import ZooError

    try:
        old = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ZooError(f"cannot read --reuse {path}: {e}") from None
    same = (old.get("limit") == args.limit and old.get("threads") == args.threads
            and old.get("chunk_ms") == args.chunk_ms
            and {k: v.get("utterances") for k, v in old.get("sets", {}).items()} == {k: len(v) for k, v in sets.items()})
    if not same:
        raise ZooError(f"--reuse {path} measured other sets / limits / threads — rerun without --reuse")
    return {r["name"]: r for r in old.get("rows", [])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="*", default=None, help="names, folders or Hub ids (default: released ASR)")
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--limit", type=int, default=None, help="first N utterances of each set")
    ap.add_argument("--chunk-ms", type=float, default=160.0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the RTF / latency measurements")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the 95%% CIs")
    ap.add_argument("--data-dir", default=None, help="corpus location (default $ZOO_DATA or ../shared/data)")
    ap.add_argument("--peers", nargs="*", default=list(PEERS), choices=list(PEERS),
                    help="peer rows (default: both; none: --peers with no names or --no-peers)")
    ap.add_argument("--no-peers", action="store_true", help="leave out the peer rows")
    ap.add_argument("--peer-lm", default="domain", choices=["domain", "joint"],
                    help="pocketsphinx LM: 'domain' = AN4 transcripts for the AN4-domain sets (an4, an4-8k, "
                    "alphanumeric), speechocean762 transcripts for speechocean762; 'joint' = both, for every set")
    ap.add_argument("--beam-size", type=int, default=1, help="zoo models: 1 = greedy (default); N > 1 = beam N; "
                    "either with the model's shipped decoding settings (config.json `decoding`)")
    ap.add_argument("--json", default=None, help="also write every number here")
    ap.add_argument("--reuse", default=None, metavar="JSON",
                    help="take the rows of systems already measured in an earlier --json file (same sets, same "
                         "utterances, same --limit) instead of running them again, e.g. the slow peer rows")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error(f"--limit must be at least 1 (got {args.limit})")
    if args.beam_size < 1:
        ap.error(f"--beam-size must be at least 1 (got {args.beam_size})")
    sets = {}
    for k in dict.fromkeys(args.sets):
        items = load_eval_set(data_dir=args.data_dir, **SETS[k][1])
        sets[k] = items[:args.limit] if args.limit else items
    timing_set = "an4" if "an4" in sets else next(iter(sets))
    names = released_asr_models() if args.models is None else args.models
    reused = load_reused_rows(args.reuse, sets, args) if args.reuse else {}
    reused = {n: r for n, r in reused.items() if n in PEERS or same_decoding(n, r, args.beam_size)}
    rows = [reused[n] if n in reused else bench_model(n, sets, timing_set, args.chunk_ms, args.threads, args.n_boot,
                                                      args.beam_size)
            for n in names]
    note = None
    peers = [] if args.no_peers else list(dict.fromkeys(args.peers))
    if not peers:
        note = "note: peer rows left out: ratios to the best peer are '-'"
    else:
        from zoo.evaluation.peers import pocketsphinx_available

        if all(p in reused for p in peers) or pocketsphinx_available():
            rows += [reused[p] if p in reused else bench_pocketsphinx(p, sets, timing_set, args.chunk_ms,
                                                                       args.n_boot, args.data_dir, args.peer_lm)
                     for p in peers]
        else:
            note = (f"note: {', '.join(peers)} row(s) skipped: pocketsphinx is not installed "
                    "(pip install 'zoo[peers]'); ratios to the best peer are '-'")
    if not rows:
        print(note or "no systems to benchmark")
        return 0
    print(format_tables(rows, sets, timing_set, args))
    if note:
        print(note)
    used = [r["name"] for r in rows if r["name"] in reused]
    if used:
        print(f"note: rows of {', '.join(used)} taken from {args.reuse} (measured on the same utterances)")
    if args.json:
        from zoo.io import atomic_write_text

        atomic_write_text(args.json, json.dumps({"sets": {k: {"title": SETS[k][0], "utterances": len(v)}
                                                          for k, v in sets.items()},
                                                 "limit": args.limit, "threads": args.threads,
                                                 "chunk_ms": args.chunk_ms, "beam_size": args.beam_size,
                                                 "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    from zoo.errors import ZooError

    try:
        sys.exit(main())
    except ZooError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
