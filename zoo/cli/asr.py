"""``zoo transcribe`` and ``zoo evaluate``: ASR and multi-talker ASR models."""
from __future__ import annotations

import sys
from pathlib import Path

from zoo.audio import check_audio_files
from zoo.errors import ZooError

ASR_TASKS = ("asr", "multitalker-asr")
# batch decoding holds a whole file (and its features) in memory; longer audio is streamed instead
MAX_BATCH_SECONDS = 600.0


def add_parsers(sub) -> None:
    t = sub.add_parser("transcribe", help="transcribe audio files (or a manifest, printing WER/CER)")
    t.add_argument("audio", nargs="*", help="audio files (WAV/FLAC/OGG; any rate, mono or stereo)")
    t.add_argument("--model", default="lstm-rnnt-an4", help="released name, model folder or Hub repo id")
    t.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit sha)")
    t.add_argument("--manifest", default=None, help="NeMo-style JSONL manifest with references")
    t.add_argument("--stream", action="store_true", help="decode chunk by chunk with the streaming session, "
                   "reading the file incrementally (any length; memory stays bounded)")
    t.add_argument("--partials", action="store_true", help="--stream: print partial results on stderr as they "
                   "come (default: only when stderr is a terminal)")
    t.add_argument("--chunk-ms", type=float, default=160.0, help="streaming chunk length (ms)")
    t.add_argument("--beam-size", type=int, default=1, help="1 = greedy; >1 = beam search (not with --stream)")
    t.add_argument("--batch-size", type=int, default=8, help="files decoded together (batch mode)")
    t.add_argument("--skip-errors", action="store_true", help="skip files that cannot be read (or are too long "
                   "for batch decoding), list them on stderr at the end and exit with status 1")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_transcribe)

    v = sub.add_parser("evaluate", help="WER/CER (greedy + beam, bootstrap CIs), streaming RTF and latency; "
                       "multi-talker models: cpWER/ORC-WER, turn counting, turn latency on two-speaker sessions")
    v.add_argument("--model", default="lstm-rnnt-an4", help="ASR model: released name, model folder or Hub repo id")
    v.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit sha)")
    v.add_argument("--corpus", default="an4", choices=["an4", "speechocean762", "alphanumeric"],
                   help="corpus recipe to evaluate on (alphanumeric: test only)")
    v.add_argument("--split", default="test", choices=["train", "dev", "test"], help="corpus split")
    v.add_argument("--narrowband", action="store_true", help="8 kHz round trip: read each file at 8 kHz and hand "
                   "it to the model at that rate (telephone band)")
    v.add_argument("--manifest", default=None, help="evaluate on a NeMo JSONL manifest instead (multi-talker "
                   "models: a `zoo data an4-mix` session manifest; default: the fixed AN4 mixture set of --split)")
    v.add_argument("--data-dir", default=None, help="corpus location (default: $ZOO_DATA or ../shared/data)")
    v.add_argument("--beam-size", type=int, default=None, help="beam of the second decoding (default 4; "
                   "multi-talker models decode greedily only)")
    v.add_argument("--chunk-ms", type=float, default=160.0, help="streaming chunk length (ms)")
    v.add_argument("--sessions", type=int, default=None, help="multi-talker: sessions of the generated set "
                   "(default: the fixed 200)")
    v.add_argument("--seed", type=int, default=None, help="multi-talker: seed of the generated set (default: fixed)")
    v.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the 95%% CIs")
    v.add_argument("--json", default=None, help="also write the full results (with hypotheses) here")
    v.add_argument("--force", action="store_true", help="replace an existing --json file")
    v.set_defaults(func=cmd_evaluate)


def asr_model(name: str, revision: str | None, command: str):
    """Load ``name`` and check it is an ASR (or multi-talker ASR) model."""
    from zoo.hub import from_pretrained

    model = from_pretrained(name, revision=revision)
    if model.task not in ASR_TASKS:
        hint = "zoo embed / verify / score" if model.task == "speaker" else "an ASR model"
        raise ZooError(f"--model {name} is a {model.task} model; zoo {command} needs a speech recognition "
                       f"model — give an ASR model (zoo list), or use {hint}")
    return model


def _check_transcribe_args(args) -> None:
    if not args.audio and not args.manifest:
        raise ZooError("nothing to transcribe — give audio files or --manifest FILE")
    if args.beam_size < 1:
        raise ZooError(f"--beam-size must be at least 1 (1 = greedy; got {args.beam_size})")
    if args.stream and args.beam_size > 1:
        raise ZooError("--stream decodes greedily — drop --beam-size")
    if args.batch_size < 1:
        raise ZooError(f"--batch-size must be at least 1 (got {args.batch_size})")
    if not args.chunk_ms > 0:
        raise ZooError(f"--chunk-ms must be positive (got {args.chunk_ms})")
    if args.partials and not args.stream:
        raise ZooError("--partials shows streaming results — add --stream")


def _check_batch_length(path: Path, seg) -> None:
    """Batch decoding of a whole long file would hold it all in memory: refuse it with the way out."""
    from zoo.audio import audio_duration

    dur = seg[1] if seg and seg[1] is not None else audio_duration(path) - (seg[0] if seg else 0.0)
    if dur > MAX_BATCH_SECONDS:
        raise ZooError(f"{path} is {dur / 60:.1f} min long; batch decoding holds a whole file in memory (limit "
                       f"{MAX_BATCH_SECONDS / 60:.0f} min) — use --stream, which reads it incrementally")


def cmd_transcribe(args) -> int:
    from zoo.audio import load_audio

    _check_transcribe_args(args)
    refs = None
    paths = [Path(a) for a in args.audio]
    segs: list[tuple | None] = [None] * len(paths)  # (offset, duration) of manifest segments
    if args.manifest:
        from zoo.data.manifest import read_manifest

        entries = list(read_manifest(args.manifest))
        paths += [Path(e["audio_filepath"]) for e in entries]
        segs += [(float(e.get("offset", 0.0)), e.get("duration")) if "offset" in e else None for e in entries]
        refs = [None] * len(args.audio) + [e.get("text") for e in entries]
    skipped: list[tuple[Path, str]] = []
    if not args.skip_errors:
        check_audio_files(paths)  # fail before any output
    model = asr_model(args.model, args.revision, "transcribe")
    if refs is not None and model.task != "asr":
        raise ZooError(f"--manifest scores single-speaker WER; {args.model} is a {model.task} model — "
                       "use zoo evaluate for multi-talker models")
    sr = model.sample_rate
    keep = []  # indices of the inputs that are decoded
    for i, (p, seg) in enumerate(zip(paths, segs)):
        try:
            if not args.stream:
                _check_batch_length(p, seg)
            if args.skip_errors and not args.stream:  # find unreadable files now; decoding reads them again
                load_audio(p, sr, *seg) if seg else load_audio(p, sr)
            keep.append(i)
        except ZooError as e:
            if not args.skip_errors:
                raise
            skipped.append((p, str(e)))
    results: dict[int, object] = {}
    if args.stream:
        partials = args.partials or sys.stderr.isatty()
        for i in keep:
            try:
                results[i] = _stream_file(model, paths[i], segs[i], args.chunk_ms, partials)
            except ZooError as e:
                if not args.skip_errors:
                    raise
                skipped.append((paths[i], str(e)))
    elif keep:
        inputs = [load_audio(paths[i], sr, *segs[i]) if segs[i] else str(paths[i]) for i in keep]
        outs = model.transcribe(inputs, sample_rate=sr, batch_size=args.batch_size, beam_size=args.beam_size,
                                progress=not args.quiet and sys.stderr.isatty())
        results = dict(zip(keep, outs))
    for i in sorted(results):
        for line in model.format_result(results[i]):
            print(f"{paths[i]}\t{line}")
    if refs is not None:
        from zoo.metrics.wer import error_rates

        pairs = [(results[i], refs[i]) for i in sorted(results) if refs[i] is not None]
        if pairs:
            normalizer = model.normalizer
            res = error_rates([h for h, _ in pairs], [r for _, r in pairs], normalizer)
            print(f"WER {100 * res['wer']:.2f}%  CER {100 * res['cer']:.2f}%  ({len(pairs)} utterances, "
                  f"{res['words']} words, normaliser '{normalizer}')")
    if skipped:
        print(f"skipped {len(skipped)} of {len(paths)} file(s):", file=sys.stderr)
        for p, why in skipped:
            print(f"  {p}: {why}", file=sys.stderr)
        return 1
    return 0


def _stream_file(model, path: Path, seg, chunk_ms: float, partials: bool):
    """Stream one file through a fresh session, reading it block by block (bounded memory); partial results on
    stderr when asked. Returns what ``model.stream_transcribe`` would (text, or turns of multi-talker models)."""
    from zoo.audio import iter_audio

    session = model.stream(chunk_ms=chunk_ms)
    tty = sys.stderr.isatty()
    shown = ""
    blocks = iter_audio(path, model.sample_rate, *seg) if seg else iter_audio(path, model.sample_rate)
    for block in blocks:
        r = session.accept_waveform(block)
        if partials:
            text = r.text if isinstance(r.text, str) else " | ".join(r.text)
            if text != shown:
                shown = text
                if tty:
                    width = 100
                    print(f"\r\x1b[K{path.name}: {text[-width:]}", end="", file=sys.stderr, flush=True)
                else:
                    print(f"{path}\t(partial) {text}", file=sys.stderr, flush=True)
    final = session.finalize()
    if partials and tty and shown:
        print("\r\x1b[K", end="", file=sys.stderr, flush=True)
    return final.turns if hasattr(final, "turns") else final.text


def cmd_evaluate(args) -> int:
    import json

    from zoo.evaluation.asr import evaluate_asr, format_report, load_eval_set
    from zoo.evaluation.multitalker import is_multitalker

    if args.n_boot < 1:
        raise ZooError(f"--n-boot must be at least 1 (got {args.n_boot})")
    if args.beam_size is not None and args.beam_size < 1:
        raise ZooError(f"--beam-size must be at least 1 (got {args.beam_size})")
    if not args.chunk_ms > 0:
        raise ZooError(f"--chunk-ms must be positive (got {args.chunk_ms})")
    if args.json:
        from zoo.io import check_new_output

        check_new_output(args.json, args.force, "--json")
    model = asr_model(args.model, args.revision, "evaluate")
    if is_multitalker(model):
        if args.narrowband or args.corpus != "an4":
            raise ZooError(f"{args.model} is a multi-talker model: it is evaluated on two-speaker AN4 sessions — "
                           "drop --corpus / --narrowband")
        res = _evaluate_multitalker(args, model)
    else:
        from zoo.data.mix import is_mix_manifest

        if args.sessions is not None or args.seed is not None:
            raise ZooError("--sessions / --seed are for multi-talker models (two-speaker sessions) — drop them")
        if args.manifest and Path(args.manifest).is_file() and is_mix_manifest(args.manifest):
            raise ZooError(f"{args.manifest} holds two-speaker sessions — evaluate a multi-talker model on it")
        from zoo.evaluation.asr import NARROWBAND_RATE

        items = load_eval_set(args.corpus, args.split, args.manifest, args.data_dir,
                              sample_rate=NARROWBAND_RATE if args.narrowband else None)
        res = evaluate_asr(model, items, beam_size=args.beam_size or 4, chunk_ms=args.chunk_ms,
                           n_boot=args.n_boot, progress=sys.stderr.isatty())
        res["eval_set"] = (args.manifest or f"{args.corpus} {args.split}") + (" (8 kHz)" if args.narrowband else "")
        print(format_report(args.model, res["eval_set"], res))
    if args.json:
        from zoo.io import atomic_write_text

        atomic_write_text(args.json, json.dumps(res, indent=2))
    return 0


def _evaluate_multitalker(args, model) -> dict:
    from zoo.evaluation.multitalker import (
        eval_set_name,
        evaluate_multitalker,
        format_multitalker_report,
        load_mix_sessions,
    )

    if args.beam_size is not None and args.beam_size > 1:
        raise ZooError(f"{args.model} is a multi-talker model: it decodes greedily (turn times come from greedy "
                       "emissions) — drop --beam-size")
    items = load_mix_sessions(args.manifest, args.split, args.sessions, args.seed, args.data_dir)
    res = evaluate_multitalker(model, items, chunk_ms=args.chunk_ms, n_boot=args.n_boot,
                               progress=sys.stderr.isatty())
    res["eval_set"] = eval_set_name(args.manifest, args.split, args.seed)
    print(format_multitalker_report(args.model, res["eval_set"], res))
    return res
