"""Character n-gram LM shallow fusion for a transducer (issue 12, optional item): tune on dev, report test once.

    python scripts/lm_fusion.py --model lstm-rnnt-an4-so762-long --out reports/lm_fusion/an4.txt \
        --lm-out reports/lm_fusion/an4_char6.json

The LM (``zoo.models.lm.CharNgramLM``, interpolated Kneser-Ney) is built from the AN4 **train** transcripts,
normalised with the model's normaliser. ``lm_weight`` x ``length_bonus`` is chosen on AN4 **dev** by WER
(ties: lower CER, then the smaller weight and bonus), beam 4. AN4 test is then decoded once at the chosen
setting and reported beside the no-LM beam-4 number, with percentile-bootstrap 95% CIs over utterances; a
control row adds the best dev length bonus *without* the LM (w = 0 rows of the grid), which separates what the
LM brings from what the insertion bonus alone brings (the model deletes more than it inserts).
The encoder runs once per utterance; only the search is repeated per setting.
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
from zoo.evaluation.asr import load_eval_set, load_item_audio  # noqa: E402
from zoo.hub import from_pretrained  # noqa: E402
from zoo.io import atomic_write_text  # noqa: E402
from zoo.metrics.wer import bootstrap_wer, error_rates  # noqa: E402
from zoo.models.lm import CharNgramLM, perplexity  # noqa: E402
from zoo.text import get_normalizer  # noqa: E402


@torch.inference_mode()
def encode_all(model, items) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out = []
    for it in items:
        wav = load_item_audio(it, model.sample_rate)
        out.append(model.encode(wav[None], torch.tensor([wav.numel()])))
    return out


@torch.inference_mode()
def decode_all(model, encs, beam: int, **fusion) -> list[str]:
    return [model.tokenizer.decode(model.decode(enc, lens, beam, **fusion)[0]) for enc, lens in encs]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="lstm-rnnt-an4-so762-long")
    ap.add_argument("--order", type=int, default=6)
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.2, 0.4, 0.6, 0.8])
    ap.add_argument("--bonuses", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", default=None, help="also write the table here")
    ap.add_argument("--lm-out", default=None, help="save the LM (JSON) here")
    a = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = from_pretrained(a.model)
    norm = get_normalizer(model.normalizer)
    train = [norm(s.text) for c in corpus_cuts("an4", a.data_dir)["train"] for s in c.supervisions if s.text]
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
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        atomic_write_text(a.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
