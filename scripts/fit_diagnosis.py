"""Under- or over-fitting? Greedy WER of an ASR model on a seeded sample of its *training* utterances beside the
same-size sample of dev, per corpus: train WER near dev WER = the model cannot fit the corpus (capacity /
steps); train WER far below dev WER = it memorises (data / regularisation).

    python scripts/fit_diagnosis.py --model lstm-rnnt-an4-so762-long --corpora an4 speechocean762 --n 150
"""
from __future__ import annotations

import argparse
import random
import sys

import torch

from zoo.errors import ZooError, one_line_errors


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="lstm-rnnt-an4-so762-long", help="ASR model: name, folder or Hub id")
    ap.add_argument("--corpora", nargs="+", default=["an4", "speechocean762"], help="corpus recipes")
    ap.add_argument("--splits", nargs="+", default=["train", "dev"], help="splits compared")
    ap.add_argument("--n", type=int, default=150, help="utterances sampled per corpus and split (seeded)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-boot", type=int, default=1000, help="speaker-bootstrap resamples for the CIs")
    ap.add_argument("--data-dir", default=None)
    a = ap.parse_args(argv)
    from zoo.fairness.metrics import overall
    from zoo.fairness.records import error_records, load_items
    from zoo.hub import from_pretrained

    torch.set_num_threads(1)
    if a.n < 1:
        raise ZooError("--n must be at least 1")
    model = from_pretrained(a.model)
    print(f"{a.model}: greedy WER % [95% CI, speaker bootstrap] on {a.n} seeded utterances per corpus and split")
    print(f"{'corpus':<16}" + "".join(f"{s:>26}" for s in a.splits))
    for corpus in a.corpora:
        row = f"{corpus:<16}"
        for split in a.splits:
            items = load_items(None, corpus, split, a.data_dir)
            random.Random(a.seed).shuffle(items)
            o = overall(error_records(model, items[:a.n], progress=False), a.n_boot, a.seed)
            row += f"{100 * o['wer']:>10.2f} [{100 * o['low']:.2f}-{100 * o['high']:.2f}]".rjust(26)
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
