"""Cohorts for "cohort membership as an extra model input" (Dheram et al., Interspeech 2022, second mitigation):
embed every training speaker with a speaker model, k-means the speakers into k cohorts, and write the file that
both the model (``model.init_args.cohort_input.file``: speaker model + centroids) and the data
(``data.cohorts``: speaker -> cohort) read; then print the ``zoo fit`` command of the fine-tune.

    python scripts/cohort_input.py --speaker-model ecapa-an4-so762 --corpora an4 speechocean762 --k 4
    # -> exp/fairness/cohort_input/cohorts.json (+ cohort_<i>_speakers.txt, one speaker a line: e.g. for
    #    --data.oversample of the same cohort in the oversampling baseline)

Training speakers are those of ``SpeechDataModule``'s train split for the same data options (``--corpora``: the
corpora of a ``data.corpora`` mix, weights do not matter; ``--corpus``; ``--train-manifest``), so the map covers
exactly the speakers the fine-tune trains on (the data module refuses a map that misses one). A speaker's
embedding is the re-normalised mean of its utterances' L2-normalised embeddings (up to ``--max-per-speaker``,
``zoo.fairness.cohorts.speaker_embeddings``); k-means is ``zoo.fairness.cohorts.kmeans_cohorts`` (``--k``, or
the k in 2..--k-max with the best silhouette).

At inference the speaker is unknown: the model embeds the first ``--assign-ms`` of an utterance and takes the
nearest centroid. The file records how often that utterance-level choice agrees with the speaker's training
cohort (``--check-per-speaker`` utterances per speaker), the train / inference mismatch of the method.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections import Counter
from pathlib import Path

import torch

from zoo.data.datamodule import SpeechDataModule
from zoo.errors import ZooError
from zoo.fairness.cohorts import kmeans_cohorts, speaker_embeddings
from zoo.hub import from_pretrained
from zoo.io import atomic_write_text
from zoo.nets.cohort import CohortInput

DEFAULT_OUT = "exp/fairness/cohort_input/cohorts.json"
OVERLAY = ["configs/fairness/ewc_finetune.yaml", "configs/fairness/cohort_input.yaml"]
OVERLAY_CORPORA = ["an4", "speechocean762"]


def training_records(corpora: list[str] | None, corpus: str | None, train_manifest: str | None,
                     data_dir: str | None) -> list[dict]:
    """{"id", "audio", "speaker"} of every training cut of the data options (whole-file cuts only)."""
    dm = SpeechDataModule(corpus=None if corpora else corpus, corpora={c: 1 for c in corpora} if corpora else None,
                          data_dir=data_dir, train_manifest=train_manifest)
    dm.setup("fit")
    if "train" not in dm.cuts:
        raise ZooError("no training data — give --corpora, --corpus or --train-manifest")
    out = []
    for c in dm.cuts["train"]:
        sup = c.supervisions[0] if c.supervisions else None
        if sup is None or sup.speaker in (None, ""):
            raise ZooError(f"training cut {c.id} has no speaker — cohorts are sets of speakers; give data with "
                           "a speaker per utterance")
        rec = c.recording
        if rec is None or c.start or abs(c.duration - rec.duration) > 1e-3 or len(rec.sources) != 1 \
                or rec.sources[0].type != "file":
            raise ZooError(f"training cut {c.id} is not a whole audio file (offset or other source) — this script "
                           "embeds whole files; cut the audio into files first")
        out.append({"id": c.id, "audio": str(rec.sources[0].source), "speaker": str(sup.speaker)})
    return out


def utterance_agreement(speaker_model, centroids: list, speakers: dict[str, int], records: list[dict],
                        per_speaker: int, assign_ms: float | None, max_per_speaker: int) -> dict:
    """How often the inference-time cohort (nearest centroid of one utterance's first ``assign_ms``) equals the
    speaker's cohort, over ``per_speaker`` utterances of each speaker: the last in id order, so not among the
    ``max_per_speaker`` (first in id order) of the speaker's mean embedding where the speaker has enough
    (``held_out`` counts those)."""
    if per_speaker <= 0:
        return {}
    ci = CohortInput(len(centroids), 1, centroids, speaker_model, assign_ms=assign_ms)
    by: dict[str, list[str]] = {}
    for r in sorted(records, key=lambda r: r["id"]):
        by.setdefault(r["speaker"], []).append(r["audio"])
    held = sum(min(per_speaker, max(0, len(a) - max_per_speaker)) for a in by.values())
    hits, n, per = 0, 0, Counter()
    items = [(s, a) for s in sorted(by) for a in by[s][-per_speaker:]]
    for i in range(0, len(items), 16):
        part = items[i:i + 16]
        wavs = speaker_model.load_inputs([a for _, a in part], None)
        lens = torch.tensor([w.numel() for w in wavs])
        got = ci.assign(torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), lens).tolist()
        for (s, _), g in zip(part, got):
            ok = g == speakers[s]
            hits += ok; n += 1
            per[(speakers[s], ok)] += 1
    cohorts = sorted({c for c, _ in per})
    return {"utterances": n, "held_out": held, "agreement": hits / n if n else None, "assign_ms": assign_ms,
            "per_cohort": {str(c): per[(c, True)] / max(1, per[(c, True)] + per[(c, False)]) for c in cohorts}}


def fit_command(out: str, corpora: list[str] | None) -> str:
    cmd = ["zoo", "fit"] + [a for c in OVERLAY for a in ("--config", c)]
    if out != DEFAULT_OUT:
        cmd += ["--model.init_args.cohort_input", f"{{file: {out}}}", "--data.cohorts", out]
    line = shlex.join(cmd)
    if sorted(corpora or []) != OVERLAY_CORPORA:
        line += "   # + the data options of these speakers (the overlay trains on data.corpora {an4: 3, " \
                "speechocean762: 1})"
    return line


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--speaker-model", default="ecapa-an4-so762", help="zoo speaker model: name, folder or Hub id")
    ap.add_argument("--corpora", nargs="+", default=None, help="corpora of a data.corpora mix (e.g. an4 "
                    "speechocean762); default: those of configs/fairness/cohort_input.yaml unless --corpus / "
                    "--train-manifest is given")
    ap.add_argument("--corpus", default=None, help="one corpus recipe (data.corpus)")
    ap.add_argument("--train-manifest", default=None, help="a training manifest (data.train_manifest)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--k", type=int, default=None, help="cohorts (default: best silhouette in 2..--k-max)")
    ap.add_argument("--k-max", type=int, default=8)
    ap.add_argument("--max-per-speaker", type=int, default=20, help="utterances embedded per speaker")
    ap.add_argument("--assign-ms", type=float, default=2000.0, help="audio that picks an utterance's cohort at "
                    "inference (stored in the file; the model's assign_ms)")
    ap.add_argument("--check-per-speaker", type=int, default=3, help="utterances per speaker of the "
                    "utterance-level agreement check (0: skip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--force", action="store_true", help="replace an existing --out")
    args = ap.parse_args(argv)
    corpora = args.corpora if args.corpora or args.corpus or args.train_manifest else list(OVERLAY_CORPORA)
    out = Path(args.out)
    try:
        if out.exists() and not args.force:
            raise ZooError(f"{out} exists — pass --force to replace it, or choose another --out")
        records = training_records(corpora, args.corpus, args.train_manifest, args.data_dir)
        model = from_pretrained(args.speaker_model)
        if model.task != "speaker":
            raise ZooError(f"{args.speaker_model} is not a speaker-embedding model (task {model.task!r}) — "
                           "give one from `zoo list`, e.g. ecapa-an4-so762")
        emb = speaker_embeddings(model, records, max_per_speaker=args.max_per_speaker, progress=sys.stderr.isatty())
        cohorts, info = kmeans_cohorts(emb, k=args.k, k_max=args.k_max, seed=args.seed)
        speakers = {s: int(name[1:]) for name, c in cohorts.items() for s in c["speakers"]}
        centroids = next(iter(cohorts.values()))["rule"]["centroids"]
        check = utterance_agreement(model, centroids, speakers, records, args.check_per_speaker, args.assign_ms,
                                    args.max_per_speaker)
    except ZooError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sizes = Counter(speakers.values())
    doc = {"speaker_model": args.speaker_model, "k": len(centroids), "metric": "euclidean",
           "assign_ms": args.assign_ms, "centroids": centroids, "speakers": dict(sorted(speakers.items())),
           "cohort_speakers": {str(i): sizes.get(i, 0) for i in range(len(centroids))}, "kmeans": info,
           "data": {"corpora": corpora if not (args.corpus or args.train_manifest) else None, "corpus": args.corpus,
                    "train_manifest": args.train_manifest, "utterances": len(records),
                    "max_per_speaker": args.max_per_speaker},
           "inference_check": check}
    atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
    for i in range(len(centroids)):
        atomic_write_text(out.parent / f"cohort_{i}_speakers.txt",
                          "".join(f"{s}\n" for s, c in sorted(speakers.items()) if c == i))
    print(f"{len(speakers)} speakers ({len(records)} utterances) -> k={len(centroids)} cohorts "
          f"({info['criterion']}); speakers per cohort: {dict(sorted(sizes.items()))}")
    if check:
        print(f"inference check: {check['agreement']:.1%} of {check['utterances']} utterances "
              f"({check['held_out']} not in the speaker means) get their speaker's cohort from their first "
              f"{args.assign_ms:g} ms")
    print(f"wrote {out} (+ cohort_<i>_speakers.txt)")
    print("fine-tune:")
    print("  " + fit_command(str(args.out), corpora if not (args.corpus or args.train_manifest) else None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
