"""Non-training ``zoo`` subcommands: list, transcribe, export, push, data, evaluate, embed, verify, score, mix,
audit, fisher (the last two live in ``zoo.fairness.cli``).

Every user error is a ZooError: one ``error: ...`` line on stderr, exit status 2, no traceback
(an OSError, e.g. an unwritable output folder, is reported the same way with exit status 1).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zoo.errors import ZooError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zoo", description="Streaming speech recognition model zoo. Training: "
                                "zoo fit|validate|test|predict --config CONFIG (Lightning CLI; --help there).")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="released models: name, task, params, streaming, headline metric")

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

    e = sub.add_parser("export", help="Lightning checkpoint -> model folder (reloaded to verify)")
    e.add_argument("checkpoint", nargs="+", help="a .ckpt written by zoo fit; several .ckpt files are averaged; "
                   "with --average N: the run's checkpoints folder")
    e.add_argument("out_dir")
    e.add_argument("--average", type=int, default=None, metavar="N",
                   help="average the N best checkpoints (by the run's monitored metric) of the given folder")
    e.add_argument("--name", default=None, help="model name for the card (default: folder name)")

    u = sub.add_parser("push", help="upload a model folder to a Hugging Face Hub repo as one commit")
    u.add_argument("folder")
    u.add_argument("repo_id", help="org/name")
    u.add_argument("--revision", default=None, help="branch to commit to")
    u.add_argument("--private", action="store_true")

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

    d = sub.add_parser("data", help="write NeMo JSONL manifests of a corpus recipe (an4-sv: + trials files)")
    d.add_argument("corpus", choices=["an4", "speechocean762", "alphanumeric", "an4-sv", "an4-mix"])
    d.add_argument("--out", required=True, help="output folder for train/dev/test .jsonl "
                   "(an4-sv: train/dev/eval .jsonl with ids + dev_trials.txt, eval_trials.txt)")
    d.add_argument("--data-dir", default=None, help="corpus location (default $ZOO_DATA or ../shared/data)")
    d.add_argument("--sessions", type=int, default=None, help="an4-mix: two-speaker sessions (default 200)")
    d.add_argument("--seed", type=int, default=None, help="an4-mix: seed (default 0: the fixed test set)")
    d.add_argument("--split", default="test", choices=["test", "dev"], help="an4-mix: whose speakers (test)")

    x = sub.add_parser("mix", help="mix two audio files (b starts --offset s into a) for demos")
    x.add_argument("audio", nargs=2, metavar="AUDIO")
    x.add_argument("--offset", type=float, required=True, help="start of the second file in the first (s)")
    x.add_argument("-o", "--output", required=True, help="output .wav or .flac (at the first file's rate)")

    m = sub.add_parser("embed", help="speaker embeddings (L2-normalised) of audio files")
    m.add_argument("audio", nargs="+")
    m.add_argument("--model", required=True, help="speaker model: name, model folder or Hub repo id")
    m.add_argument("--revision", default=None)
    m.add_argument("-o", "--output", default=None, help="write an (N, D) .npy, or a .pt {paths, embeddings}; "
                   "default: print one line per file")

    f = sub.add_parser("verify", help="same speaker? cosine score and accept/reject at the model's threshold")
    f.add_argument("audio", nargs=2, metavar="AUDIO")
    f.add_argument("--model", required=True)
    f.add_argument("--revision", default=None)
    f.add_argument("--threshold", type=float, default=None, help="override the calibrated threshold")

    s = sub.add_parser("score", help="EER / minDCF (overall, per gender, gender gap) with speaker-bootstrap CIs "
                       "on a Kaldi trials file, + DET plot")
    s.add_argument("--model", required=True)
    s.add_argument("--revision", default=None)
    s.add_argument("--trials", required=True, help="lines 'enroll_utt test_utt target|nontarget'")
    s.add_argument("--manifest", default=None, help="JSONL with id, audio_filepath, speaker, gender "
                   "(default: utterance ids are audio paths)")
    s.add_argument("--out", default=None, help="folder for metrics.json and det.png")
    s.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of speakers (0: no CIs)")

    from zoo.fairness.cli import add_parsers as add_fairness_parsers

    add_fairness_parsers(sub)  # audit, fisher
    return p


def run_command(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"list": cmd_list, "transcribe": cmd_transcribe, "export": cmd_export, "push": cmd_push,
                "data": cmd_data, "evaluate": cmd_evaluate, "embed": cmd_embed, "verify": cmd_verify,
                "score": cmd_score, "mix": cmd_mix, "audit": cmd_audit,
                "fisher": cmd_fisher}[args.command](args)
    except ZooError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. an output folder that cannot be created
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def cmd_list(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from zoo.registry import list_models

    table = Table("name", "task", "params", "streaming", "headline metric", "description")
    for m in list_models():
        params = f"{m.params / 1e6:.2f}M" if m.params else "-"
        table.add_row(m.name, m.task, params, "yes" if m.streaming else "no", m.metric or "-", m.description)
    Console(width=200).print(table)
    return 0


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
    for p in paths:  # fail before any output
        if not p.exists():
            raise ZooError(f"audio file not found: {p}")
    model = from_pretrained(args.model, revision=args.revision)
    if refs is not None and getattr(model, "task", "asr") != "asr":
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
    for p, t in zip(paths, texts):
        if isinstance(t, list):  # multi-talker models: one line per turn (channel, start s, end s, text)
            for turn in t:
                print(f"{p}\t{turn.channel}\t{turn.start:.2f}\t{turn.end:.2f}\t{turn.text}")
        else:
            print(f"{p}\t{t}")
    if refs is not None:
        from zoo.metrics import error_rates

        pairs = [(h, r) for h, r in zip(texts, refs) if r is not None]
        normalizer = getattr(model, "zoo_config", {}).get("normalizer", "upper")
        res = error_rates([h for h, _ in pairs], [r for _, r in pairs], normalizer)
        print(f"WER {100 * res['wer']:.2f}%  CER {100 * res['cer']:.2f}%  ({len(pairs)} utterances, "
              f"{res['words']} words, normaliser '{normalizer}')")
    return 0


def cmd_export(args) -> int:
    from zoo.export import export_checkpoint

    from zoo.export import best_checkpoints

    ckpts = args.checkpoint
    if args.average is not None:
        if len(ckpts) != 1:
            raise ZooError("--average takes one checkpoints folder — give the folder, not files")
        ckpts = best_checkpoints(ckpts[0], args.average)
    out = export_checkpoint(ckpts, args.out_dir, name=args.name)
    what = f"the average of {len(ckpts)} checkpoints" if len(ckpts) > 1 else "the checkpoint"
    print(f"wrote {out} from {what} (reloaded and verified)")
    return 0


def cmd_push(args) -> int:
    from zoo.hub import push_to_hub

    url = push_to_hub(args.folder, args.repo_id, revision=args.revision, private=args.private)
    print(url)
    return 0


def cmd_data(args) -> int:
    from zoo.data import write_manifest, write_sv_data

    if args.corpus == "an4-sv":
        for p in write_sv_data(args.out, args.data_dir):
            print(p)
        return 0
    if args.corpus == "an4-mix":
        from zoo.data.mix import write_an4_mix

        print(write_an4_mix(args.out, args.sessions, args.seed, args.data_dir, args.split))
        return 0

    from zoo.data.corpora import corpus_cuts

    for split, cuts in corpus_cuts(args.corpus, args.data_dir).items():
        print(write_manifest(cuts, Path(args.out) / f"{split}.jsonl"))
        lhotse_path, tmp = Path(args.out) / f"{split}.cuts.jsonl.gz", Path(args.out) / f".tmp-{split}.cuts.jsonl.gz"
        try:  # the lhotse manifest keeps every metadata field; written atomically
            cuts.to_file(tmp)
            tmp.replace(lhotse_path)
        finally:
            tmp.unlink(missing_ok=True)
        print(lhotse_path)
    return 0


def cmd_evaluate(args) -> int:
    import json

    from zoo.evaluate import evaluate_asr, format_report, load_eval_set
    from zoo.hub import from_pretrained
    from zoo.multitalker_eval import is_multitalker

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
        from zoo.evaluate import NARROWBAND_RATE

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
    from zoo.multitalker_eval import eval_set_name, evaluate_multitalker, format_multitalker_report, load_mix_sessions

    if args.beam_size is not None and args.beam_size > 1:
        raise ZooError(f"{args.model} is a multi-talker model: it decodes greedily (turn times come from greedy "
                       "emissions); drop --beam-size")
    items = load_mix_sessions(args.manifest, args.split, args.sessions, args.seed, args.data_dir)
    res = evaluate_multitalker(model, items, chunk_ms=args.chunk_ms, n_boot=args.n_boot,
                               progress=sys.stderr.isatty())
    res["eval_set"] = eval_set_name(args.manifest, args.split, args.seed)
    print(format_multitalker_report(args.model, res["eval_set"], res))
    return res


def _speaker_model(args):
    from zoo.hub import from_pretrained

    model = from_pretrained(args.model, revision=args.revision)
    task = getattr(model, "task", "asr")
    if task != "speaker":
        raise ZooError(f"{args.model} is not a speaker-embedding model (its task is {task!r})")
    return model


def _check_audio(paths) -> None:
    for p in paths:
        if not Path(p).exists():
            raise ZooError(f"audio file not found: {p}")


def cmd_embed(args) -> int:
    import numpy as np
    import torch

    from zoo.io import atomic_write_bytes

    out = Path(args.output) if args.output else None
    if out is not None and out.suffix not in (".npy", ".pt"):
        raise ZooError(f"--output must end in .npy or .pt (got {out.name})")
    _check_audio(args.audio)
    model = _speaker_model(args)
    emb = model.embed(args.audio)
    if out is None:
        for p, e in zip(args.audio, emb):
            print(f"{p}\t" + " ".join(f"{v:.6f}" for v in e.tolist()))
        return 0
    import io

    buf = io.BytesIO()
    if out.suffix == ".npy":
        np.save(buf, emb.numpy())
    else:
        torch.save({"paths": [str(p) for p in args.audio], "embeddings": emb}, buf)
    atomic_write_bytes(out, buf.getvalue())
    print(f"wrote {out} ({emb.shape[0]} x {emb.shape[1]})")
    return 0


def cmd_verify(args) -> int:
    _check_audio(args.audio)
    model = _speaker_model(args)
    score, same = model.verify(*args.audio, threshold=args.threshold)
    t = model.threshold if args.threshold is None else args.threshold
    print(f"score {score:.4f}\t{'accept' if same else 'reject'} (threshold {t:.4f})")
    return 0


def cmd_score(args) -> int:
    import json

    from zoo.io import atomic_write_text
    from zoo.sv_eval import evaluate_sv, load_sv_set
    from zoo.sv_metrics import det_curve, format_sv_report, plot_det

    if args.n_boot < 0:
        raise ZooError("--n-boot must be >= 0")
    trials, utts = load_sv_set(args.trials, args.manifest)
    model = _speaker_model(args)
    rep, scores, labels = evaluate_sv(model, trials, utts, n_boot=args.n_boot)
    rep.update(model=str(args.model), trials=str(args.trials))
    print(format_sv_report(f"{args.model} on {args.trials}", rep))
    if args.out:
        fnr, fpr, _ = det_curve(scores, labels)
        out = Path(args.out)
        png = plot_det({Path(str(args.model)).name: (fnr, fpr, rep["eer"])}, out / "det.png", title=Path(args.trials).name)
        atomic_write_text(out / "metrics.json", json.dumps(rep, indent=2) + "\n")
        print(f"wrote {out / 'metrics.json'} and {png}")
    return 0


def cmd_mix(args) -> int:
    from zoo.data.mix import mix_files

    out, dur, sr = mix_files(args.audio[0], args.audio[1], args.offset, args.output)
    print(f"wrote {out} ({dur:.2f} s, {sr} Hz)")
    return 0


def cmd_audit(args) -> int:
    from zoo.fairness.cli import cmd_audit as run

    return run(args)


def cmd_fisher(args) -> int:
    from zoo.fairness.cli import cmd_fisher as run

    return run(args)
