"""``zoo transcribe`` and ``zoo evaluate``: ASR and multi-talker ASR models."""
from __future__ import annotations

import sys
from pathlib import Path

from zoo.audio import check_audio_files
from zoo.errors import ZooError


def add_parsers(sub) -> None:
    t = sub.add_parser("transcribe", help="transcribe audio files (or a manifest, printing WER/CER)")
    t.add_argument("audio", nargs="*", help="audio files (WAV/FLAC/OGG; any rate, mono or stereo)")
    t.add_argument("--model", default="lstm-rnnt-an4", help="released name, model folder or Hub repo id")
    t.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit sha)")
    t.add_argument("--manifest", default=None, help="NeMo-style JSONL manifest with references")
    t.add_argument("--stream", action="store_true", help="decode chunk by chunk with the streaming session")
    t.add_argument("--chunk-ms", type=float, default=160.0, help="streaming chunk length (ms)")
    t.add_argument("--beam-size", type=int, default=1, help="1 = greedy; >1 = beam search (not with --stream)")
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_transcribe)

    v = sub.add_parser("evaluate", help="WER/CER (greedy + beam, bootstrap CIs), streaming RTF and latency; "
                       "multi-talker models: cpWER/ORC-WER, turn counting, turn latency on two-speaker sessions")
    v.add_argument("--model", default="lstm-rnnt-an4")
    v.add_argument("--revision", default=None)
    v.add_argument("--corpus", default="an4", choices=["an4", "speechocean762", "alphanumeric"],
                   help="corpus recipe to evaluate on (alphanumeric: test only)")
    v.add_argument("--split", default="test", choices=["train", "dev", "test"])
    v.add_argument("--narrowband", action="store_true", help="8 kHz round trip: read each file at 8 kHz and hand "
                   "it to the model at that rate (telephone band)")
    v.add_argument("--manifest", default=None, help="evaluate on a NeMo JSONL manifest instead (multi-talker "
                   "models: a `zoo data an4-mix` session manifest; default: the fixed AN4 mixture set of --split)")
    v.add_argument("--data-dir", default=None)
    v.add_argument("--beam-size", type=int, default=None, help="beam of the second decoding (default 4; "
                   "multi-talker models decode greedily only)")
    v.add_argument("--chunk-ms", type=float, default=160.0)
    v.add_argument("--sessions", type=int, default=None, help="multi-talker: sessions of the generated set "
                   "(default: the fixed 200)")
    v.add_argument("--seed", type=int, default=None, help="multi-talker: seed of the generated set (default: fixed)")
    v.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the 95%% CIs")
    v.add_argument("--json", default=None, help="also write the full results (with hypotheses) here")
    v.set_defaults(func=cmd_evaluate)


def cmd_transcribe(args) -> int:
    from zoo.audio import load_audio
    from zoo.hub import from_pretrained

    if not args.audio and not args.manifest:
        raise ZooError("give audio files or --manifest FILE")
    if args.stream and args.beam_size > 1:
        raise ZooError("--stream decodes greedily; drop --beam-size")
    refs = None
    paths = [Path(a) for a in args.audio]
    segs: list[tuple | None] = [None] * len(paths)  # (offset, duration) of manifest segments
    if args.manifest:
        from zoo.data.manifest import read_manifest

        entries = list(read_manifest(args.manifest))
        paths += [Path(e["audio_filepath"]) for e in entries]
        segs += [(float(e["offset"]), e.get("duration")) if "offset" in e else None for e in entries]
        refs = [None] * len(args.audio) + [e.get("text") for e in entries]
    check_audio_files(paths)  # fail before any output
    model = from_pretrained(args.model, revision=args.revision)
    if refs is not None and model.task != "asr":
        raise ZooError(f"--manifest scores single-speaker WER; {args.model} is a {model.task} model")
    sr = model.sample_rate
    if args.stream:
        texts = []
        for p, seg in zip(paths, segs):
            wav = load_audio(p, sr, *seg) if seg else load_audio(p, sr)
            texts.append(model.stream_transcribe(wav, chunk_ms=args.chunk_ms))
    else:
        inputs = [load_audio(p, sr, *seg) if seg else str(p) for p, seg in zip(paths, segs)]
        texts = model.transcribe(inputs, sample_rate=sr, batch_size=args.batch_size, beam_size=args.beam_size,
                                 progress=not args.quiet and sys.stderr.isatty())
    for p, result in zip(paths, texts):
        for line in model.format_result(result):
            print(f"{p}\t{line}")
    if refs is not None:
        from zoo.metrics.wer import error_rates

        pairs = [(h, r) for h, r in zip(texts, refs) if r is not None]
        normalizer = model.normalizer
        res = error_rates([h for h, _ in pairs], [r for _, r in pairs], normalizer)
        print(f"WER {100 * res['wer']:.2f}%  CER {100 * res['cer']:.2f}%  ({len(pairs)} utterances, "
              f"{res['words']} words, normaliser '{normalizer}')")
    return 0


def cmd_evaluate(args) -> int:
    import json

    from zoo.evaluation.asr import evaluate_asr, format_report, load_eval_set
    from zoo.hub import from_pretrained
    from zoo.evaluation.multitalker import is_multitalker

    if args.n_boot < 1:
        raise ZooError(f"--n-boot must be at least 1 (got {args.n_boot})")
    model = from_pretrained(args.model, revision=args.revision)
    if is_multitalker(model):
        if args.narrowband or args.corpus != "an4":
            raise ZooError(f"{args.model} is a multi-talker model: it is evaluated on two-speaker AN4 sessions — "
                           "drop --corpus / --narrowband")
        res = _evaluate_multitalker(args, model)
    else:
        from zoo.data.mix import is_mix_manifest

        if args.sessions is not None or args.seed is not None:
            raise ZooError("--sessions / --seed are for multi-talker models (two-speaker sessions)")
        if args.manifest and Path(args.manifest).is_file() and is_mix_manifest(args.manifest):
            raise ZooError(f"{args.manifest} holds two-speaker sessions; evaluate a multi-talker model on it")
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
    from zoo.evaluation.multitalker import eval_set_name, evaluate_multitalker, format_multitalker_report, load_mix_sessions

    if args.beam_size is not None and args.beam_size > 1:
        raise ZooError(f"{args.model} is a multi-talker model: it decodes greedily (turn times come from greedy "
                       "emissions); drop --beam-size")
    items = load_mix_sessions(args.manifest, args.split, args.sessions, args.seed, args.data_dir)
    res = evaluate_multitalker(model, items, chunk_ms=args.chunk_ms, n_boot=args.n_boot,
                               progress=sys.stderr.isatty())
    res["eval_set"] = eval_set_name(args.manifest, args.split, args.seed)
    print(format_multitalker_report(args.model, res["eval_set"], res))
    return res
