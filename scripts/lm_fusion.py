"""Character / word n-gram LM shallow fusion for a transducer (issue 12): tune on dev, report test once.

    python scripts/lm_fusion.py --model lstm-rnnt-an4-so762-long --out reports/lm_fusion/an4.txt \
        --lm-out reports/lm_fusion/an4_char6.json
    python scripts/lm_fusion.py --lm word --model lstm-rnnt-an4-so762-long --out reports/v2/lm_fusion_word.txt

``--lm char`` (the default) is described first; ``--lm word`` below.

The LM (``zoo.models.lm.CharNgramLM``, interpolated Kneser-Ney) is built from the AN4 **train** transcripts,
normalised with the model's normaliser. ``lm_weight`` x ``length_bonus`` is chosen on AN4 **dev** by WER
(ties: lower CER, then the smaller weight and bonus), beam 4. AN4 test is then decoded once at the chosen
setting and reported beside the no-LM beam-4 number, with percentile-bootstrap 95% CIs over utterances; a
control row adds the best dev length bonus *without* the LM (w = 0 rows of the grid), which separates what the
LM brings from what the insertion bonus alone brings (the model deletes more than it inserts).
The encoder runs once per utterance; only the search is repeated per setting.

``--lm word``: a word 3-gram (``zoo.models.lm.WordNgramLM``, interpolated modified Kneser-Ney, vocabulary = the
training words, scored on characters through a prefix tree with look-ahead and an OOV penalty) built from the
model's training transcripts (AN4 train + speechocean762 train; ``--word-lm-data`` adds others, e.g. ``an4``
alone, the data of the pocketsphinx peer's LM). On AN4 dev it tunes ``lm_weight`` x ``length_bonus`` x word
insertion bonus x ``oov_penalty`` for each word LM, ``lm_weight`` x ``length_bonus`` for the char LM of
``--lm char`` (same LM, same grid) and the length bonus alone, each LM's choice among its ``lm_weight > 0``
rows; then AN4 test is decoded once per row: no LM, bonus alone, char LM, word LM(s), side by side with CIs.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from zoo.data.corpora import corpus_cuts  # noqa: E402
from zoo.evaluation.asr import decode_encoded as decode_all  # noqa: E402
from zoo.evaluation.asr import encode_items as encode_all  # noqa: E402
from zoo.evaluation.asr import load_eval_set  # noqa: E402
from zoo.hub import from_pretrained  # noqa: E402
from zoo.io import command_header, print_report  # noqa: E402
from zoo.metrics.wer import bootstrap_wer, error_rates  # noqa: E402
from zoo.models.lm import CharNgramLM, WordNgramLM, perplexity  # noqa: E402
from zoo.text import get_normalizer  # noqa: E402


def transcripts(corpora: list[str], norm, data_dir) -> list[str]:
    """The normalised train-split transcripts of the named corpus recipes."""
    return [norm(s.text) for name in corpora for c in corpus_cuts(name, data_dir)["train"]
            for s in c.supervisions if s.text]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lm", choices=["char", "word"], default="char")
    ap.add_argument("--model", default="lstm-rnnt-an4-so762-long")
    ap.add_argument("--order", type=int, default=None, help="n-gram order (default: char 6, word 3)")
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.2, 0.4, 0.6, 0.8])
    ap.add_argument("--bonuses", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    ap.add_argument("--word-weights", type=float, nargs="+", default=[0.2, 0.4, 0.6, 0.8],
                    help="word LM: lm_weight grid")
    ap.add_argument("--word-bonuses", type=float, nargs="+", default=[0.0, 1.0, 2.0, 3.0],
                    help="word LM: word insertion bonus grid (log domain, per completed word)")
    ap.add_argument("--oov-penalties", type=float, nargs="+", default=[0.0, -10.0],
                    help="word LM: log-prob penalty per out-of-vocabulary word (grid)")
    ap.add_argument("--ilm-weights", type=float, nargs="*", default=[0.1, 0.2, 0.3],
                    help="word mode: also tune internal-LM subtraction (no external LM) over this grid x --bonuses")
    ap.add_argument("--lookahead", choices=["sum", "max", "none"], default="sum", help="word LM look-ahead")
    ap.add_argument("--word-lm-data", nargs="+", default=["an4+speechocean762"],
                    help="word LM training data: one LM (and one test row) per '+'-joined set of corpus recipes "
                         "whose train transcripts it counts (default: the model's training data)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", default=None, help="also write the table here")
    ap.add_argument("--lm-out", default=None, help="save the LM here (char: JSON, word: ARPA)")
    a = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if a.lm == "word":
        return main_word(a)
    a.order = a.order or 6
    model = from_pretrained(a.model)
    norm = get_normalizer(model.normalizer)
    train = transcripts(["an4"], norm, a.data_dir)
    lm = CharNgramLM.from_texts(train, order=a.order, vocab=model.tokenizer.vocab)
    if a.lm_out:
        lm.save(a.lm_out)
    dev = load_eval_set("an4", "dev", data_dir=a.data_dir)
    test = load_eval_set("an4", "test", data_dir=a.data_dir)
    dev_refs, test_refs = [it["text"] for it in dev], [it["text"] for it in test]
    lines = [f"LM: {lm!r} on {len(train)} AN4 train transcripts (normaliser {model.normalizer!r}); "
             f"char perplexity dev {perplexity(lm, [norm(r) for r in dev_refs]):.2f}",
             "", f"dev ({len(dev)} utts), {a.model}, beam {a.beam}: WER % / CER % by lm_weight x length_bonus",
             f"{'lm_weight':>9} {'bonus':>6} {'WER %':>7} {'CER %':>7}"]
    print("\n".join(lines), flush=True)
    t0 = time.perf_counter()
    dev_encs = encode_all(model, dev)
    res = {}
    for w in a.weights:
        for b in a.bonuses:  # w = 0 with a bonus: the bonus alone, a control
            hyps = decode_all(model, dev_encs, a.beam, lm=lm if w > 0 else None, lm_weight=w, length_bonus=b)
            res[(w, b)] = error_rates(hyps, dev_refs, model.normalizer)
            lines.append(f"{w:>9.2f} {b:>6.2f} {100 * res[(w, b)]['wer']:>7.2f} {100 * res[(w, b)]['cer']:>7.2f}")
            print(lines[-1], f"({time.perf_counter() - t0:.0f} s)", flush=True)
    best = min(res, key=lambda k: (res[k]["wer"], res[k]["cer"], k))
    lines.append(f"chosen on dev: lm_weight {best[0]:g}, length_bonus {best[1]:g}")
    test_encs = encode_all(model, test)
    rows = [("no LM", {}), (f"LM w={best[0]:g} bonus={best[1]:g}",
                            {"lm": lm, "lm_weight": best[0], "length_bonus": best[1]})]
    # control: the best bonus without an LM (also chosen on dev), to separate the LM from the bonus
    b0 = min((k for k in res if k[0] == 0.0), key=lambda k: (res[k]["wer"], res[k]["cer"], k))
    if b0[1] and best[0] > 0:
        rows.append((f"no LM, bonus={b0[1]:g} (control)", {"length_bonus": b0[1]}))
    lines += ["", f"test ({len(test)} utts), {a.model}, beam {a.beam}, decoded once per row; "
              f"95% CI: percentile bootstrap over utterances (n={a.n_boot})",
              f"{'':<30} {'WER %':>7} {'95% CI':>15} {'CER %':>7}"]
    for name, fusion in rows:
        hyps = decode_all(model, test_encs, a.beam, **fusion)
        er = error_rates(hyps, test_refs, model.normalizer)
        ci = bootstrap_wer(hyps, test_refs, model.normalizer, n=a.n_boot)
        span = f"{100 * ci['low']:.2f}-{100 * ci['high']:.2f}"
        lines.append(f"{name:<30} {100 * er['wer']:>7.2f} {span:>15} {100 * er['cer']:>7.2f}")
        print(lines[-1], flush=True)
    print_report(lines, a.out)
    return 0


def ci_row(name: str, hyps: list[str], refs: list[str], normalizer: str, n_boot: int) -> str:
    er = error_rates(hyps, refs, normalizer)
    ci = bootstrap_wer(hyps, refs, normalizer, n=n_boot)
    span = f"{100 * ci['low']:.2f}-{100 * ci['high']:.2f}"
    return f"{name:<60} {100 * er['wer']:>7.2f} {span:>15} {100 * er['cer']:>7.2f}"


def main_word(a) -> int:
    """``--lm word``: tune the bonus alone, the char LM and each word LM on dev; test once per row."""
    model = from_pretrained(a.model)
    norm = get_normalizer(model.normalizer)
    vocab = model.tokenizer.vocab
    t0 = time.perf_counter()
    dev = load_eval_set("an4", "dev", data_dir=a.data_dir)
    test = load_eval_set("an4", "test", data_dir=a.data_dir)
    dev_refs, test_refs = [it["text"] for it in dev], [it["text"] for it in test]
    lines = [command_header(sys.argv), ""]
    wlms = {}
    for data in a.word_lm_data:
        t = time.perf_counter()
        train = transcripts(data.split("+"), norm, a.data_dir)
        wlms[data] = WordNgramLM.from_texts(train, order=a.order or 3, vocab=vocab, lookahead=a.lookahead)
        ppl, n_scored, n_oov = wlms[data].perplexity([norm(r) for r in dev_refs])
        lines.append(f"word LM [{data}]: {wlms[data]!r} from {len(train)} {data} train transcripts (normaliser "
                     f"{model.normalizer!r}; built in {time.perf_counter() - t:.1f} s); AN4 dev word perplexity "
                     f"{ppl:.2f} ({n_scored} words + </s> scored, {n_oov} OOV)")
    clm = CharNgramLM.from_texts(transcripts(["an4"], norm, a.data_dir), order=6, vocab=vocab)  # = --lm char's
    if a.lm_out:
        wlms[a.word_lm_data[0]].save(a.lm_out)
    lines += [f"char LM: {clm!r} from AN4 train transcripts (as --lm char); char perplexity AN4 dev "
              f"{perplexity(clm, [norm(r) for r in dev_refs]):.2f}",
              "", f"dev ({len(dev)} utts), {a.model}, beam {a.beam}: WER % / CER % per setting "
              "(w: lm_weight, bonus: length bonus per token, wb: word bonus, oov: OOV penalty, ilm: internal-LM "
              "weight subtracted; s: seconds)",
              f"{'LM':<26} {'w':>4} {'bonus':>5} {'wb':>4} {'oov':>4} {'ilm':>4} {'WER %':>7} {'CER %':>7} {'s':>5}"]
    print("\n".join(lines), flush=True)
    dev_encs = encode_all(model, dev)
    # a setting: (kind, lm_weight, length bonus, word bonus, oov penalty, internal-LM weight)
    grid = [("none", 0.0, b, None, None, 0.0) for b in a.bonuses]
    grid += [("ilm", 0.0, b, None, None, i) for i in a.ilm_weights if i > 0 for b in a.bonuses]
    grid += [("char", w, b, None, None, 0.0) for w in a.weights if w > 0 for b in a.bonuses]
    grid += [(f"word [{data}]", w, b, wb, o, 0.0) for data in a.word_lm_data for o in a.oov_penalties
             for wb in a.word_bonuses for w in a.word_weights if w > 0 for b in a.bonuses]

    def fusion_of(kind: str, w: float, b: float, wb, o, i: float) -> dict:
        lm = None if kind in ("none", "ilm") else clm if kind == "char" else \
            wlms[kind.split("[", 1)[1].split("]")[0]].set_options(oov_penalty=o, word_bonus=wb)
        return {"lm": lm, "lm_weight": w, "length_bonus": b, "ilm_weight": i}

    res = {}
    t_grid = time.perf_counter()

    def run_dev(keys):
        for key in keys:
            t = time.perf_counter()
            hyps = decode_all(model, dev_encs, a.beam, **fusion_of(*key))
            r = res[key] = error_rates(hyps, dev_refs, model.normalizer)
            kind, w, b, wb, o, i = key
            lines.append(f"{kind:<26} {w:>4.2g} {b:>5.2g} {'-' if wb is None else f'{wb:g}':>4} "
                         f"{'-' if o is None else f'{o:g}':>4} {i:>4.2g} {100 * r['wer']:>7.2f} "
                         f"{100 * r['cer']:>7.2f} {time.perf_counter() - t:>5.1f}")
            print(lines[-1], flush=True)

    def pick(kind: str):  # lowest dev WER; ties: lower CER, smaller weights / bonuses, milder penalty
        return min((k for k in res if k[0] == kind),
                   key=lambda k: (res[k]["wer"], res[k]["cer"], k[1], k[5], k[2], k[3] or 0.0, -(k[4] or 0.0)))

    run_dev(grid)
    # stage 2: each word LM with internal-LM subtraction (ILME fusion), its word bonus and OOV penalty as chosen
    if a.ilm_weights:
        stage2 = []
        for data in a.word_lm_data:
            _, _, _, wb, o, _ = pick(f"word [{data}]")
            stage2 += [(f"word [{data}] + ILM", w, b, wb, o, i) for i in a.ilm_weights if i > 0
                       for w in a.word_weights if w > 0 for b in a.bonuses]
        run_dev(stage2)
        grid += stage2
    lines.append(f"dev grid: {len(grid)} passes in {time.perf_counter() - t_grid:.0f} s")

    chosen = [pick(kind) for kind in dict.fromkeys(k[0] for k in grid)]
    rows = [("no LM", {})]
    for key in chosen:
        kind, w, b, wb, o, i = key
        what = ([f"lm_weight {w:g}"] if w else []) + ([f"internal-LM weight {i:g}"] if i else []) + \
            [f"length bonus {b:g}"] + ([] if wb is None else [f"word bonus {wb:g}, oov penalty {o:g} "
                                                             f"(lookahead {a.lookahead!r})"])
        lines.append(f"chosen on dev for {kind}: " + ", ".join(what))
        name = (f"length bonus {b:g} alone (control)" if kind == "none" else f"char 6-gram LM w={w:g} b={b:g}"
                if kind == "char" else f"internal-LM subtraction {i:g}, b={b:g} (no external LM)" if kind == "ilm"
                else f"word {a.order or 3}-gram {kind[5:]} w={w:g} b={b:g} wb={wb:g} oov={o:g}"
                + (f" ilm={i:g}" if i else ""))
        rows.append((name, fusion_of(*key)))
    test_encs = encode_all(model, test)
    lines += ["", f"test ({len(test)} utts), {a.model}, beam {a.beam}, decoded once per row; "
              f"95% CI: percentile bootstrap over utterances (n={a.n_boot})",
              f"{'AN4 test':<60} {'WER %':>7} {'95% CI':>15} {'CER %':>7}"]
    for name, fusion in rows:
        hyps = decode_all(model, test_encs, a.beam, **fusion)
        lines.append(ci_row(name, hyps, test_refs, model.normalizer, a.n_boot))
        print(lines[-1], flush=True)
    lines.append(f"total {time.perf_counter() - t0:.0f} s")
    print_report(lines, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
