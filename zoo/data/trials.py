"""Speaker-verification trial lists in the Kaldi / WeSpeaker format: one ``enroll_utt test_utt target|nontarget``
per line, utterance ids resolved through a JSONL manifest (``id``, ``audio_filepath``, ``speaker``, ``gender``).

Besides the all-pairs lists of AN4-SV (``write_sv_data``), the published speechocean762-test list
(``data/trials/so762_test_trials.txt`` + the utterance table ``so762_test_utts.tsv``; see
``reports/sv_v2/README.md``): ``so762_test_trials`` builds it, ``write_so762_manifest`` resolves the table's
relative audio paths on this machine for ``zoo score --manifest``; ``python -m zoo.data.trials`` does both."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterable

import numpy as np

from zoo.data.manifest import write_manifest
from zoo.errors import ManifestError
from zoo.io import atomic_write_text

LABELS = {"target": True, "nontarget": False}


def make_trials(utts: Iterable[tuple[str, str]], max_nontarget: int | None = None,
                seed: int = 0) -> list[tuple[str, str, bool]]:
    """Every cross-utterance pair of ``(utt_id, speaker)`` items, as ``(enroll, test, is_target)``.

    Utterances are sorted by id and each unordered pair appears once (enroll < test). With ``max_nontarget``,
    nontarget pairs are subsampled to that many (uniformly, ``numpy.random.default_rng(seed)``, original
    order kept); target pairs are always all kept.
    """
    items = sorted(set(utts))
    ids = [u for u, _ in items]
    if len(ids) != len(set(ids)):
        raise ValueError("an utterance id appears with two different speakers")
    pairs = [(a[0], b[0], a[1] == b[1]) for a, b in itertools.combinations(items, 2)]
    if max_nontarget is not None:
        non = [i for i, p in enumerate(pairs) if not p[2]]
        if len(non) > max_nontarget:
            keep = set(np.random.default_rng(seed).choice(non, size=max_nontarget, replace=False).tolist())
            pairs = [p for i, p in enumerate(pairs) if p[2] or i in keep]
    return pairs


def write_trials(trials: Iterable[tuple[str, str, bool]], path: str | Path) -> Path:
    """Write a trials file atomically."""

    return atomic_write_text(path, "".join(f"{a} {b} {'target' if t else 'nontarget'}\n" for a, b, t in trials))


def read_trials(path: str | Path) -> list[tuple[str, str, bool]]:
    """Read a trials file; a malformed line raises ManifestError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"trials file not found: {path}")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        f = line.split()
        if len(f) != 3 or f[2] not in LABELS:
            raise ManifestError(f"{path}:{n}: expected 'enroll_utt test_utt target|nontarget', got {line.strip()!r}")
        out.append((f[0], f[1], LABELS[f[2]]))
    if not out:
        raise ManifestError(f"{path} has no trials")
    return out


def write_sv_data(out_dir: str | Path, data_dir=None, max_nontarget: int | None = None) -> list[Path]:
    """The AN4 speaker-verification split: ``{train,dev,eval}.jsonl`` (with ids, speaker, gender) and
    ``{dev,eval}_trials.txt`` (all cross-utterance pairs within each set) in ``out_dir``."""
    from zoo.data.an4 import an4_speaker_split

    out_dir = Path(out_dir)
    split = an4_speaker_split(data_dir)
    paths = [write_manifest(cuts, out_dir / f"{name}.jsonl", with_id=True) for name, cuts in split.items()]
    for name in ("dev", "eval"):
        utts = [(c.id, c.supervisions[0].speaker) for c in split[name]]
        paths.append(write_trials(make_trials(utts, max_nontarget), out_dir / f"{name}_trials.txt"))
    return paths


# --- stratified trial lists (speechocean762 test) -------------------------------------------------------------
TRIALS_DIR = Path(__file__).resolve().parents[2] / "data" / "trials"  # the committed lists (repo checkout)
SO762_TRIALS = "so762_test_trials.txt"
SO762_UTTS = "so762_test_utts.tsv"
SO762_NONTARGET_PER_STRATUM = 3000
SO762_SEED = 0
UTT_COLUMNS = ("utt", "speaker", "gender", "age", "age_group", "duration", "audio")

_M64 = (1 << 64) - 1


def _hash64(seed, key: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest(), "little")


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic; the same on every platform and version)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _pair_keys(h: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return _mix64(h[a] ^ _mix64(h[b] + np.uint64(0x9E3779B97F4A7C15)))


def _take(a: np.ndarray, b: np.ndarray, h: np.ndarray, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` pairs with the smallest hash keys (all when ``n`` is None or >= the count)."""
    if n is None or len(a) <= n:
        return a, b
    order = np.lexsort((b, a, _pair_keys(h, a, b)))[:n]
    return a[order], b[order]


def stratum_of(c1: str, c2: str) -> str:
    """The unordered cohort pair of a trial, e.g. ``f-adult|f-child``."""
    return "|".join(sorted((c1, c2)))


def stratified_trials(utts: Iterable[tuple[str, str, str]], n_per_stratum: int,
                      max_target: int | None = None, seed: int = 0) -> list[tuple[str, str, bool]]:
    """Trials over ``(utt_id, speaker, cohort)`` items, ``(enroll, test, is_target)`` with enroll < test, sorted.

    * target: every same-speaker pair (with ``max_target``, the ``max_target`` with the smallest keys);
    * nontarget: for every unordered pair of cohorts (a *stratum*: ``C(k, 2) + k`` of them for k cohorts),
      ``n_per_stratum`` different-speaker pairs (all of them if there are fewer).

    Sampling is a seeded hash ranking: each pair's key is a splitmix64 mix of the blake2b hashes of
    ``"{seed}:{utt}"``; a stratum keeps its smallest keys. The choice does not depend on numpy's or Python's
    random streams, so the list is the same on every machine and version.
    """
    items = sorted(set(utts))
    ids = [u for u, _, _ in items]
    if len(ids) != len(set(ids)):
        raise ValueError("an utterance id appears with two different speakers or cohorts")
    spk_cohort: dict[str, str] = {}
    for _, s, c in items:
        if spk_cohort.setdefault(s, c) != c:
            raise ValueError(f"speaker {s!r} is in two cohorts")
    h = np.array([_hash64(seed, u) for u in ids], dtype=np.uint64)
    spk_names = sorted(spk_cohort)
    code = {s: i for i, s in enumerate(spk_names)}
    spk = np.array([code[s] for _, s, _ in items])
    cohorts = sorted(set(spk_cohort.values()))
    by_cohort = {c: np.array([i for i, (_, _, ci) in enumerate(items) if ci == c]) for c in cohorts}
    parts: list[tuple[np.ndarray, np.ndarray, bool]] = []
    # targets: all within-speaker pairs
    ta, tb = [], []
    for s in range(len(spk_names)):
        idx = np.flatnonzero(spk == s)
        i, j = np.triu_indices(len(idx), 1)
        ta.append(idx[i])
        tb.append(idx[j])
    parts.append((*_take(np.concatenate(ta), np.concatenate(tb), h, max_target), True))
    for x, c1 in enumerate(cohorts):
        for c2 in cohorts[x:]:
            I, J = by_cohort[c1], by_cohort[c2]  # noqa: E741  (two index sets)
            if c1 == c2:
                i, j = np.triu_indices(len(I), 1)
                a, b = I[i], I[j]
            else:
                a, b = np.repeat(I, len(J)), np.tile(J, len(I))
                a, b = np.minimum(a, b), np.maximum(a, b)
            keep = spk[a] != spk[b]
            parts.append((*_take(a[keep], b[keep], h, n_per_stratum), False))
    a = np.concatenate([p[0] for p in parts])
    b = np.concatenate([p[1] for p in parts])
    t = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    order = np.lexsort((b, a))
    return [(ids[i], ids[j], bool(k)) for i, j, k in zip(a[order], b[order], t[order])]


def trial_strata(trials, cohort: dict[str, str]) -> dict[str, dict[str, int]]:
    """{stratum: {"target": n, "nontarget": n}} of a trial list, given each utterance's cohort."""
    out: dict[str, dict[str, int]] = {}
    for a, b, t in trials:
        d = out.setdefault(stratum_of(cohort[a], cohort[b]), {"target": 0, "nontarget": 0})
        d["target" if t else "nontarget"] += 1
    return dict(sorted(out.items()))


def cohort_trials(trials, table: dict[str, dict], **where) -> list[tuple[str, str, bool]]:
    """The trials whose enroll and test utterances both match ``where`` (fields of the utterance table), e.g.
    ``cohort_trials(trials, table, age_group="child")``: the targets of that cohort's speakers and the
    nontargets inside the cohort (the usual per-cohort EER)."""
    ok = {u for u, r in table.items() if all(str(r.get(k)) == str(v) for k, v in where.items())}
    return [t for t in trials if t[0] in ok and t[1] in ok]


def _so762_dir(data_dir=None) -> Path:
    from zoo.data.corpora import _corpus_dir

    return _corpus_dir(data_dir, "speechocean762", "train/text")


def so762_utt_table(data_dir=None) -> dict[str, dict]:
    """speechocean762 test utterances from the corpus: utt -> {speaker (``so762_`` prefixed), gender, age,
    age_group, duration, audio (relative to the speechocean762 folder, as in its ``wav.scp``)}."""
    from zoo.data.corpora import prefix_speakers, speechocean762_cuts

    d = _so762_dir(data_dir).resolve()
    cuts = prefix_speakers(speechocean762_cuts(data_dir)["test"], "speechocean762")
    out = {}
    for c in cuts:
        s = c.supervisions[0]
        out[s.recording_id] = {"speaker": s.speaker, "gender": s.gender, "age": s.custom["age"],
                               "age_group": s.custom["age_group"], "duration": round(c.duration, 2),
                               "audio": Path(c.recording.sources[0].source).resolve().relative_to(d).as_posix()}
    return dict(sorted(out.items()))


def so762_test_trials(data_dir=None, n_per_stratum: int = SO762_NONTARGET_PER_STRATUM, seed: int = SO762_SEED):
    """(trials, utterance table) of the published speechocean762-test trial list: all 23,750 same-speaker
    pairs + ``n_per_stratum`` different-speaker pairs per stratum of (gender, age group) cohort pairs (4
    cohorts ``f-child``, ``f-adult``, ``m-child``, ``m-adult`` -> 10 strata), see :func:`stratified_trials`."""
    table = so762_utt_table(data_dir)
    utts = [(u, r["speaker"], f"{r['gender']}-{r['age_group']}") for u, r in table.items()]
    return stratified_trials(utts, n_per_stratum, seed=seed), table


def write_utt_table(table: dict[str, dict], path: str | Path) -> Path:

    lines = ["\t".join(UTT_COLUMNS)]
    lines += ["\t".join([u] + ["" if r[k] is None else str(r[k]) for k in UTT_COLUMNS[1:]])
              for u, r in table.items()]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def read_utt_table(path: str | Path = TRIALS_DIR / SO762_UTTS) -> dict[str, dict]:
    """utt -> {speaker, gender, age (int or None), age_group, duration (float), audio} from a table file."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"utterance table not found: {path}")
    rows = path.read_text(encoding="utf-8").splitlines()
    if not rows or tuple(rows[0].split("\t")) != UTT_COLUMNS:
        raise ManifestError(f"{path}:1: expected the header {' '.join(UTT_COLUMNS)}")
    out = {}
    for n, line in enumerate(rows[1:], 2):
        f = line.split("\t")
        if len(f) != len(UTT_COLUMNS):
            raise ManifestError(f"{path}:{n}: expected {len(UTT_COLUMNS)} tab-separated fields, got {len(f)}")
        r = dict(zip(UTT_COLUMNS[1:], (x or None for x in f[1:])))
        r["age"] = int(r["age"]) if r["age"] is not None else None
        r["duration"] = float(r["duration"])
        out[f[0]] = r
    return out


def write_so762_test_trials(out_dir: str | Path = TRIALS_DIR, data_dir=None) -> list[Path]:
    """(Re)generate the published list: ``so762_test_trials.txt`` + ``so762_test_utts.tsv`` in ``out_dir``."""
    trials, table = so762_test_trials(data_dir)
    out_dir = Path(out_dir)
    return [write_trials(trials, out_dir / SO762_TRIALS), write_utt_table(table, out_dir / SO762_UTTS)]


def write_so762_manifest(out: str | Path, data_dir=None, table: str | Path = TRIALS_DIR / SO762_UTTS) -> Path:
    """A ``zoo score --manifest`` JSONL for the published list, written at run time: the committed utterance
    table's relative audio paths resolved against this machine's speechocean762 folder (``data_dir`` /
    ``$ZOO_DATA``) as absolute paths. Fields: id, audio_filepath, duration, speaker, gender, age, age_group."""
    import json


    d = _so762_dir(data_dir).resolve()
    rows = read_utt_table(table)
    missing = [r["audio"] for r in rows.values() if not (d / r["audio"]).is_file()]
    if missing:
        raise ManifestError(f"{len(missing)} audio file(s) of {table} are not under {d} (e.g. {missing[0]}) — "
                            "check ZOO_DATA / --data-dir")
    lines = [json.dumps({"id": u, "audio_filepath": str(d / r["audio"]), "duration": r["duration"],
                         "speaker": r["speaker"], "gender": r["gender"], "age": r["age"],
                         "age_group": r["age_group"]}) for u, r in rows.items()]
    return atomic_write_text(out, "\n".join(lines) + "\n")


def write_cohort_trials(out_dir: str | Path, trials_path: str | Path = TRIALS_DIR / SO762_TRIALS,
                        table: str | Path = TRIALS_DIR / SO762_UTTS, field: str = "age_group") -> list[Path]:
    """Per-cohort subsets of a trial list (``<stem>.<value>.txt``, one per value of ``field``) for
    ``zoo score``, which reports per-gender EER itself but not per-age-group EER."""
    trials, rows = read_trials(trials_path), read_utt_table(table)
    stem = Path(trials_path).stem
    values = sorted({str(r[field]) for r in rows.values() if r[field] is not None})
    return [write_trials(cohort_trials(trials, rows, **{field: v}), Path(out_dir) / f"{stem}.{v}.txt")
            for v in values]


def main(argv=None) -> int:
    """``python -m zoo.data.trials {generate,manifest,cohorts}``: the speechocean762-test trial list."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m zoo.data.trials", description=main.__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="regenerate data/trials/so762_test_{trials.txt,utts.tsv} from the corpus")
    g.add_argument("--out", default=str(TRIALS_DIR))
    m = sub.add_parser("manifest", help="write the zoo score --manifest JSONL (absolute paths on this machine)")
    m.add_argument("out")
    c = sub.add_parser("cohorts", help="write per-age-group subsets of the trial list")
    c.add_argument("out_dir")
    c.add_argument("--field", default="age_group")
    for p in (g, m):
        p.add_argument("--data-dir", default=None)
    a = ap.parse_args(argv)
    if a.cmd == "generate":
        paths = write_so762_test_trials(a.out, a.data_dir)
    elif a.cmd == "manifest":
        paths = [write_so762_manifest(a.out, a.data_dir)]
    else:
        paths = write_cohort_trials(a.out_dir, field=a.field)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
