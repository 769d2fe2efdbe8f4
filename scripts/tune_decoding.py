"""Choose a model's decoding settings on dev (issue 12): internal-LM subtraction and a per-token length bonus,
for greedy decoding (also what streaming uses) and for beam search, no external LM.

    python scripts/tune_decoding.py --model exp/v2s3/lstm_model --out reports/v2/tune_decoding_lstm.txt

The predictor of an RNN-T is a language model of its training transcripts; on AN4 it has learnt the training
speakers' spelled names and numbers and pulls test hypotheses towards them (and towards blank). Dividing part of
it out (ILME, Meng et al. 2021: ``log p - w log p_ILM``, the ILM being the joiner without the acoustic term)
plus a length bonus corrects that. Every (w, bonus) of the grid is scored on each corpus's dev split (speakers
held out of training); the setting with the lowest mean of the per-corpus dev WERs wins (ties: lower CER, then
the smaller w and bonus), separately for greedy and for beam search. The encoder runs once per utterance. The
last line is the `scripts/release_asr.py` flags that store the choice in the model's config.json; the test sets
are not decoded here (the release evaluation reports them once).
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from zoo.evaluation.asr import decode_encoded, encode_items, load_eval_set  # noqa: E402
from zoo.hub import from_pretrained  # noqa: E402
from zoo.io import command_header, print_report  # noqa: E402
from zoo.metrics.wer import error_rates  # noqa: E402


def choose(res: dict, keys: list) -> tuple:
    """The key with the lowest mean dev WER over corpora (ties: CER, then smaller settings)."""
    def mean(k, what):
        return sum(r[what] for r in res[k].values()) / len(res[k])
    return min(keys, key=lambda k: (mean(k, "wer"), mean(k, "cer"), k))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="model name, folder or Hub id")
    ap.add_argument("--corpora", nargs="+", default=["an4", "speechocean762"], help="dev splits to average")
    ap.add_argument("--ilm-weights", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.4])
    ap.add_argument("--bonuses", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    ap.add_argument("--beam", type=int, default=4, help="beam size to tune for (0: greedy only)")
    ap.add_argument("--limit", type=int, default=None, help="first N dev utterances per corpus (quick looks)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None, help="also write the report here")
    a = ap.parse_args(argv)
    model = from_pretrained(a.model)
    t0 = time.perf_counter()
    dev = {c: load_eval_set(c, "dev", data_dir=a.data_dir)[:a.limit] for c in a.corpora}
    encs = {c: encode_items(model, items) for c, items in dev.items()}
    lines = [command_header(sys.argv if argv is None else ["scripts/tune_decoding.py", *argv]), "",
             f"{a.model}: dev WER % per corpus ({', '.join(f'{c} {len(v)} utts' for c, v in dev.items())}); "
             "w: internal-LM weight subtracted, bonus: per non-blank token",
             f"{'decoding':<9} {'w':>4} {'bonus':>5} " + " ".join(f"{c[:14]:>14}" for c in dev) + f" {'mean':>7}"]
    modes = [("greedy", 1)] + ([(f"beam{a.beam}", a.beam)] if a.beam > 1 else [])
    res: dict = {}
    for mode, beam in modes:
        for w, b in itertools.product(a.ilm_weights, a.bonuses):
            key = (mode, w, b)
            res[key] = {c: error_rates(decode_encoded(model, encs[c], beam, ilm_weight=w, length_bonus=b),
                                       [it["text"] for it in dev[c]], model.normalizer) for c in dev}
            wers = [100 * r["wer"] for r in res[key].values()]
            lines.append(f"{mode:<9} {w:>4.2g} {b:>5.2g} " + " ".join(f"{x:>14.2f}" for x in wers)
                         + f" {sum(wers) / len(wers):>7.2f}")
            print(lines[-1], flush=True)
    flags = []
    for mode, beam in modes:
        keys = [k for k in res if k[0] == mode]
        plain, best = res[(mode, 0.0, 0.0)] if (mode, 0.0, 0.0) in res else None, choose(res, keys)
        _, w, b = best
        mean = sum(r["wer"] for r in res[best].values()) / len(res[best])
        was = f" (plain {100 * sum(r['wer'] for r in plain.values()) / len(plain):.2f})" if plain else ""
        lines.append(f"chosen for {mode}: ilm_weight {w:g}, length_bonus {b:g}: mean dev WER {100 * mean:.2f}%{was}")
        flags.append(f"--{'greedy' if beam == 1 else 'beam'}-settings ilm_weight={w:g},length_bonus={b:g}")
    lines += [f"release flags: {' '.join(flags)}", f"({time.perf_counter() - t0:.0f} s)"]
    print_report(lines, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
