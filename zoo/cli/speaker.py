"""``zoo embed``, ``zoo verify`` and ``zoo score``: speaker-embedding models."""
from __future__ import annotations

from pathlib import Path

from zoo.audio import check_audio_files
from zoo.errors import ZooError


def add_parsers(sub) -> None:
    m = sub.add_parser("embed", help="speaker embeddings (L2-normalised) of audio files")
    m.add_argument("audio", nargs="+", help="audio files (WAV/FLAC/OGG; any rate, mono or stereo)")
    m.add_argument("--model", required=True, help="speaker model: name, model folder or Hub repo id")
    m.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit sha)")
    m.add_argument("-o", "--output", default=None, help="write an (N, D) .npy, or a .pt {paths, embeddings}; "
                   "default: print one line per file")
    m.add_argument("--force", action="store_true", help="replace an existing --output file")
    m.set_defaults(func=cmd_embed)

    f = sub.add_parser("verify", help="same speaker? cosine score and accept/reject at the model's threshold")
    f.add_argument("audio", nargs=2, metavar="AUDIO", help="the two audio files to compare")
    f.add_argument("--model", required=True, help="speaker model: name, model folder or Hub repo id")
    f.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit sha)")
    f.add_argument("--threshold", type=float, default=None, help="override the calibrated threshold")
    f.set_defaults(func=cmd_verify)

    s = sub.add_parser("score", help="EER / minDCF (overall, per gender, gender gap) with speaker-bootstrap CIs "
                       "on a Kaldi trials file, + DET plot")
    s.add_argument("--model", required=True, help="speaker model: name, model folder or Hub repo id")
    s.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit sha)")
    s.add_argument("--trials", required=True, help="lines 'enroll_utt test_utt target|nontarget'")
    s.add_argument("--manifest", default=None, help="JSONL with id, audio_filepath, speaker, gender "
                   "(default: utterance ids are audio paths)")
    s.add_argument("--out", default=None, help="folder for metrics.json and det.png")
    s.add_argument("--force", action="store_true", help="replace metrics.json / det.png in an existing --out")
    s.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of speakers (0: no CIs)")
    s.set_defaults(func=cmd_score)


def _speaker_model(args):
    from zoo.hub import from_pretrained

    model = from_pretrained(args.model, revision=args.revision)
    task = model.task
    if task != "speaker":
        raise ZooError(f"{args.model} is not a speaker-embedding model (its task is {task!r}) — give a speaker "
                       "model (e.g. ecapa-an4; zoo list), or use zoo transcribe for ASR models")
    return model


def cmd_embed(args) -> int:
    import numpy as np
    import torch

    from zoo.io import atomic_write_bytes

    out = Path(args.output) if args.output else None
    if out is not None and out.suffix not in (".npy", ".pt"):
        raise ZooError(f"--output must end in .npy or .pt (got {out.name})")
    if out is not None:
        from zoo.io import check_new_output

        check_new_output(out, args.force, "--output")
    check_audio_files(args.audio)
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
    check_audio_files(args.audio)
    model = _speaker_model(args)
    score, same = model.verify(*args.audio, threshold=args.threshold)
    t = model.threshold if args.threshold is None else args.threshold
    print(f"score {score:.4f}\t{'accept' if same else 'reject'} (threshold {t:.4f})")
    return 0


def cmd_score(args) -> int:
    import json

    from zoo.evaluation.speaker import evaluate_sv, load_sv_set
    from zoo.io import atomic_write_text
    from zoo.metrics.speaker import det_curve, format_sv_report, plot_det

    if args.n_boot < 0:
        raise ZooError(f"--n-boot must be >= 0 (got {args.n_boot})")
    if args.out:
        from zoo.io import check_new_output

        for name in ("metrics.json", "det.png"):
            check_new_output(Path(args.out) / name, args.force, "--out")
    trials, utts = load_sv_set(args.trials, args.manifest)
    model = _speaker_model(args)
    rep, scores, labels = evaluate_sv(model, trials, utts, n_boot=args.n_boot)
    rep.update(model=str(args.model), trials=str(args.trials))
    print(format_sv_report(f"{args.model} on {args.trials}", rep))
    if args.out:
        fnr, fpr, _ = det_curve(scores, labels)
        out = Path(args.out)
        png = plot_det({Path(str(args.model)).name: (fnr, fpr, rep["eer"])}, out / "det.png",
                       title=Path(args.trials).name)
        atomic_write_text(out / "metrics.json", json.dumps(rep, indent=2) + "\n")
        print(f"wrote {out / 'metrics.json'} and {png}")
    return 0
