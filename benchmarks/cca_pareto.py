"""Compute vs WER of compute-cost-amortized (CCA) and sliding-window Transformer transducers (issue 4).

    python benchmarks/cca_pareto.py exp/cca_sweep/*                     # run folders of scripts/cca_sweep.py
    python benchmarks/cca_pareto.py checkpoints/cca-transformer-an4 x.ckpt --split dev --out-dir reports/cca

Inputs: run folders (`zoo fit` default_root_dir: the best-*.ckpt with the lowest val_wer in checkpoints/, else
last.ckpt), Lightning .ckpt files, model folders (config.json + model.safetensors) or zoo model names.
Every model must have a `cca_transformer` encoder. For each, on AN4 test (or --split dev, or --manifest):

- WER: greedy, decoded from the encoder's real gated inference path ``infer()`` (active frames gathered, each
  MHA/FFN run on those only, scattered back), whole utterance; 95% CI = 1000 bootstrap resamples of utterances.
- FLOPs %: encoder FLOPs counted by ``infer()`` from the actual gate decisions (arbitrators included) / the
  same weights with every gate on and the full attention span (``infer(force_all_on=True, left=left_context)``).
  For sliding-window models it is the analytic count (``CCATransformerEncoder.dense_flops``; formula in
  zoo/nets/cca_transformer.py): with D = d_model, per layer and output frame t
  2*4*D^2 + 2*2*D*ffn + 2*2*D*K_t, K_t = min(t + 1, window + 1) keys, vs K_t = min(t + 1, left_context + 1),
  plus the input projection 2*(stack*F)*D per frame in both; it is checked against infer()'s count.
- wall %: encoder wall-clock at --threads (default 1) threads, the model as it is vs the same weights all on
  (full span), same utterances, --repeats passes, each input run in both modes back to back (alternating
  which goes first), median of the per-pass totals; for batch transcription ("batch": ``forward`` in eval
  mode on --batch-size utterances padded together, sorted by length; gated models run their active frames
  only, the dense reference ``forward(force_all_on=True, left=left_context)`` is the all-on model's batch
  path), for the whole utterance at once ("utt", ``infer``) and streamed in --chunk-ms chunks. The all-on
  row (identical work in both modes) shows the measurement noise. A second table gives the seconds.
- per-layer MHA / FFN on-rates over all frames.
- ratios vs the all-on model: WER x and FLOPs x against the input whose encoder is `gated: false, window: 0`
  (or --baseline).

Prints the table, writes <out-dir>/cca_pareto.md (table, for the card), cca_pareto.json (every number) and
cca_pareto.png (encoder FLOPs % vs WER with 95% CIs, the CCA and sliding-window series and the Pareto front).
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path

import torch

from zoo.audio import load_audio
from zoo.evaluation.asr import load_eval_set
from zoo.io import atomic_write_text
from zoo.metrics.wer import bootstrap_wer, error_rates
from zoo.models.decoding import greedy_search
from zoo.nets.cca_transformer import CCATransformerEncoder
from zoo.nets.encoder import stack_frames

KINDS = {"cca": "CCA (gated, from scratch)", "cca-ft": "CCA (gated, fine-tuned from all on)", "window": "sliding window",
         "cca-window": "CCA on a sliding window", "allon": "all on"}
GATED = ("cca", "cca-ft", "cca-window")


# --- inputs ----------------------------------------------------------------------------------------
def pick_checkpoint(run_dir: Path) -> Path:
    """The best-*.ckpt with the lowest val_wer in <run_dir>/checkpoints (or run_dir itself), else last.ckpt."""
    for d in (run_dir / "checkpoints", run_dir):
        best = sorted(d.glob("best-*.ckpt"), key=lambda p: _val_wer(p.name))
        if best:
            return best[0]
        if (d / "last.ckpt").is_file():
            return d / "last.ckpt"
    raise FileNotFoundError(f"{run_dir}: no model folder, best-*.ckpt or last.ckpt")


def _val_wer(name: str) -> float:
    m = re.search(r"val_wer=([0-9.]+?)(?:\.ckpt|-|$)", name)
    return float(m.group(1)) if m else float("inf")


def load_model(src: str):
    """(net, {"name", "source", "compute_weight", "init_from"}) from a run folder, .ckpt, model folder or model name."""
    from zoo.hub import from_pretrained
    from zoo.hub.export import net_from_checkpoint
    from zoo.models.base import load_folder

    p = Path(src)
    lam = init_from = None
    if p.is_dir() and (p / "config.json").is_file():
        net, name = load_folder(p), p.name
        cfg = net.zoo_config
        lam = (cfg.get("training") or {}).get("compute_weight")
        for y in sorted(p.glob("*.yaml")):  # the training config a release copies next to the weights
            import yaml

            init = ((yaml.safe_load(y.read_text()) or {}).get("model") or {}).get("init_args") or {}
            lam = init.get("compute_weight", lam)
            init_from = init.get("init_from", init_from)
        source = str(p)
    elif p.is_dir() or p.suffix == ".ckpt":
        ckpt = pick_checkpoint(p) if p.is_dir() else p
        net, _ = net_from_checkpoint(ckpt)
        hp = torch.load(ckpt, map_location="cpu", weights_only=True).get("hyper_parameters") or {}
        lam, init_from = hp.get("compute_weight"), hp.get("init_from")
        name = p.name if p.is_dir() else (ckpt.parent.parent.name if ckpt.parent.name == "checkpoints" else ckpt.stem)
        source = str(ckpt)
    else:
        net, name, source = from_pretrained(src), src, src
    if not isinstance(net.encoder, CCATransformerEncoder):
        raise ValueError(f"{src}: encoder is {type(net.encoder).__name__}, not cca_transformer")
    return net.eval(), {"name": name, "source": source, "compute_weight": None if lam is None else float(lam),
                        "init_from": init_from}


def kind_of(enc: CCATransformerEncoder, init_from: str | None = None) -> str:
    """allon / window / cca (trained gated from scratch) / cca-ft (gates learnt by fine-tuning a trained model) /
    cca-window (gates on a sliding-window encoder)."""
    if enc.window > 0:
        return "cca-window" if enc.gated else "window"
    return ("cca-ft" if init_from else "cca") if enc.gated else "allon"


# --- measurements ----------------------------------------------------------------------------------
def stacked_inputs(net, wavs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per utterance: the encoder's stacked input frames (1, T', stack*F) (featurizer stats are the model's)."""
    out = []
    with torch.inference_mode():
        for w in wavs:
            feats, flens = net.featurizer(w[None], torch.tensor([w.numel()]))
            out.append(stack_frames(feats, flens, net.encoder.subsampling)[0])
    return out


def run_infer(enc: CCATransformerEncoder, x: torch.Tensor, chunk: int = 0, dense: bool = False):
    """Encode one utterance with ``infer`` (whole, or ``chunk`` output frames at a time) -> (y, FLOPs, gates).
    ``dense``: the same weights with every gate on and the full attention span."""
    kw = {"force_all_on": True, "left": enc.left_context} if dense else {}
    state, ys, gates, flops = enc.init_state(1), [], [], 0
    step = chunk if chunk > 0 else max(1, x.shape[1])
    for i in range(0, x.shape[1], step):
        y, state, f = enc.infer(x[:, i:i + step], state, **kw)
        ys.append(y)
        gates.append(enc.last_gates)
        flops += f
    if not ys:
        return x.new_zeros(1, 0, enc.output_dim), 0, x.new_zeros(1, 0, len(enc.layers), 2)
    return torch.cat(ys, 1), flops, torch.cat(gates, 1)


def time_encoder(enc: CCATransformerEncoder, xs: list[torch.Tensor], chunk: int, repeats: int) -> dict:
    """Encoder wall-clock (s) over all utterances, the model as it is vs dense: in every pass each utterance runs
    in both modes back to back (which goes first alternates by utterance and pass), so load drift hits both
    alike; median of the per-pass totals."""
    times = {"model": [0.0] * repeats, "dense": [0.0] * repeats}
    with torch.inference_mode():
        for x in xs[:3]:  # warm-up
            run_infer(enc, x, chunk)
            run_infer(enc, x, chunk, dense=True)
        for r in range(repeats):
            for i, x in enumerate(xs):
                for mode in (("model", "dense") if (r + i) % 2 == 0 else ("dense", "model")):
                    t0 = time.perf_counter()
                    run_infer(enc, x, chunk, dense=mode == "dense")
                    times[mode][r] += time.perf_counter() - t0
    m, d = statistics.median(times["model"]), statistics.median(times["dense"])
    return {"model_s": m, "dense_s": d, "ratio": m / d if d else float("nan"), "passes": times}


def time_batch(enc: CCATransformerEncoder, xs: list[torch.Tensor], batch_size: int, repeats: int) -> dict:
    """Batch ``forward`` (eval) wall-clock (s) over all utterances in padded batches of ``batch_size`` (sorted by
    length), the model as it is vs dense (every gate on, full span), interleaved as in ``time_encoder``."""
    order = sorted(range(len(xs)), key=lambda i: xs[i].shape[1])
    batches = []
    for i in range(0, len(order), batch_size):
        us = [xs[j][0].reshape(-1, enc.inp[1].in_features // enc.subsampling) for j in order[i:i + batch_size]]
        lens = torch.tensor([u.shape[0] for u in us])  # (B,) input frames; stacking in forward is a reshape
        batches.append((torch.nn.utils.rnn.pad_sequence(us, batch_first=True), lens))
    dense_kw = {"force_all_on": True, "left": enc.left_context}
    times = {"model": [0.0] * repeats, "dense": [0.0] * repeats}
    with torch.inference_mode():
        for f, lens in batches[:2]:  # warm-up
            enc(f, lens)
            enc(f, lens, **dense_kw)
        for r in range(repeats):
            for i, (f, lens) in enumerate(batches):
                for mode in (("model", "dense") if (r + i) % 2 == 0 else ("dense", "model")):
                    t0 = time.perf_counter()
                    enc(f, lens, **(dense_kw if mode == "dense" else {}))
                    times[mode][r] += time.perf_counter() - t0
    m, d = statistics.median(times["model"]), statistics.median(times["dense"])
    return {"model_s": m, "dense_s": d, "ratio": m / d if d else float("nan"), "passes": times,
            "batch_size": batch_size}


def evaluate(net, meta: dict, items: list[dict], repeats: int = 5, chunk_ms: float = 160.0, threads: int = 1,
             n_boot: int = 1000, batch_size: int = 8) -> dict:
    enc: CCATransformerEncoder = net.encoder
    kind = kind_of(enc, meta.get("init_from"))
    norm = getattr(net, "zoo_config", {}).get("normalizer", "upper")
    wavs = [load_audio(it["audio"], net.sample_rate) for it in items]
    refs = [it["text"] for it in items]
    xs = stacked_inputs(net, wavs)
    hyps, counted, dense, analytic_model, analytic_dense = [], 0, 0, 0, 0
    on = torch.zeros(len(enc.layers), 2, dtype=torch.float64)
    frames = 0
    with torch.inference_mode():
        for x in xs:
            y, f, g = run_infer(enc, x)
            _, fd, _ = run_infer(enc, x, dense=True)
            t = y.shape[1]
            counted, dense, frames = counted + f, dense + fd, frames + t
            analytic_model += enc.dense_flops(t, arbitrators=enc.gated)
            analytic_dense += enc.dense_flops(t, left=enc.left_context)
            on += g[0].double().sum(0)
            toks = greedy_search(net, y, torch.tensor([t])).hyps[0] if t else []
            hyps.append(net.tokenizer.decode(toks))
    er = error_rates(hyps, refs, norm)
    ci = bootstrap_wer(hyps, refs, norm, n=n_boot)
    # sliding window: the analytic count (must equal what infer() counted); CCA: infer()'s count of the gates
    flops = analytic_model if kind == "window" else counted
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        chunk = max(1, round(chunk_ms / net.frame_ms)) if chunk_ms > 0 else 0
        wall_batch = time_batch(enc, xs, batch_size, repeats) if batch_size > 0 else None
        wall_utt = time_encoder(enc, xs, 0, repeats)
        wall_stream = time_encoder(enc, xs, chunk, repeats) if chunk else None
    finally:
        torch.set_num_threads(old)
    audio_s = sum(w.numel() for w in wavs) / net.sample_rate
    rate = (on / max(frames, 1)).tolist()
    return {**meta, "kind": kind, "window": enc.window, "left_context": enc.left_context,
            "value": enc.window if kind == "window" else meta.get("compute_weight"),
            "utterances": len(items), "frames": frames, "audio_s": audio_s,
            "wer": er["wer"], "cer": er["cer"], "low": ci["low"], "high": ci["high"],
            "flops": flops, "flops_counted": counted, "flops_dense": dense, "flops_analytic": analytic_model,
            "flops_analytic_dense": analytic_dense, "flops_frac": flops / dense if dense else float("nan"),
            "gflops_per_audio_s": flops / audio_s / 1e9 if audio_s else float("nan"),
            "wall_batch": wall_batch, "wall_utt": wall_utt, "wall_stream": wall_stream, "chunk_ms": chunk_ms,
            "threads": threads,
            "encoder_rtf_utt": wall_utt["model_s"] / audio_s if audio_s else float("nan"),
            "mha_on": [r[0] for r in rate], "ffn_on": [r[1] for r in rate],
            "params": sum(p.numel() for p in net.parameters())}


# --- Pareto, table, plot ---------------------------------------------------------------------------
def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated (cost, error) points (lower is better on both), sorted by cost.
    A point is dominated if another is <= on both and < on at least one; exact duplicates all stay."""
    front = []
    for i, (c, e) in enumerate(points):
        if not any((c2 <= c and e2 <= e) and (c2 < c or e2 < e) for j, (c2, e2) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], points[i][1]))


def dominated_by(points: list[tuple[float, float]], i: int, among: list[int]) -> list[int]:
    """Which of ``among`` dominate point i."""
    c, e = points[i]
    return [j for j in among if j != i and points[j][0] <= c and points[j][1] <= e
            and (points[j][0] < c or points[j][1] < e)]


def find_baseline(rows: list[dict], baseline: str | None) -> dict | None:
    if baseline:
        return next((r for r in rows if r["source"] == baseline or r["name"] == baseline), None)
    return next((r for r in rows if r["kind"] == "allon"), None)


def _label(r: dict) -> str:
    if r["kind"] == "window":
        return f"W={r['window']}"
    if r["kind"] == "cca-window":
        return f"W={r['window']} λ=" + ("?" if r["value"] is None else f"{r['value']:g}")
    if r["kind"] in GATED:
        return "λ=?" if r["value"] is None else f"λ={r['value']:g}"
    return "all on"


def format_table(rows: list[dict], base: dict | None, markdown: bool = False) -> str:
    head = ["run", "kind", "λ / window", "WER %", "95% CI", "FLOPs %", "wall % batch", "wall % utt",
            f"wall % {rows[0]['chunk_ms']:.0f}ms" if rows and rows[0]["wall_stream"] else "wall % stream",
            "MHA on %", "FFN on %", "WER x", "FLOPs x", "Pareto"]
    pts = [(r["flops_frac"], r["wer"]) for r in rows]
    front = set(pareto_front(pts))
    body = []
    for i, r in enumerate(rows):
        mha = 100 * sum(r["mha_on"]) / len(r["mha_on"])
        ffn = 100 * sum(r["ffn_on"]) / len(r["ffn_on"])
        ws = f"{100 * r['wall_stream']['ratio']:.1f}" if r["wall_stream"] else "-"
        wb = f"{100 * r['wall_batch']['ratio']:.1f}" if r.get("wall_batch") else "-"
        wx = f"{r['wer'] / base['wer']:.3f}" if base and base["wer"] else "-"
        fx = f"{r['gflops_per_audio_s'] / base['gflops_per_audio_s']:.3f}" if base else "-"
        val = "-" if r["value"] is None else f"{r['value']:g}"
        body.append([r["name"], r["kind"], val, f"{100 * r['wer']:.2f}", f"{100 * r['low']:.2f}-{100 * r['high']:.2f}",
                     f"{100 * r['flops_frac']:.1f}", wb, f"{100 * r['wall_utt']['ratio']:.1f}", ws,
                     f"{mha:.1f}", f"{ffn:.1f}", wx, fx, "*" if i in front else ""])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(b) + " |" for b in body]
        return "\n".join(lines)
    widths = [max(len(h), *(len(b[k]) for b in body)) if body else len(h) for k, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.rjust(w) if k > 1 else c.ljust(w) for k, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([fmt(head)] + [fmt(b) for b in body])


def wall_table(rows: list[dict]) -> str:
    """Encoder seconds at --threads: the model as it is / same weights all on (full span), and their ratio."""
    lines = ["encoder wall-clock s (median pass): model / all on = ratio"]
    for r in rows:
        cells = []
        for key, name in (("wall_batch", "batch"), ("wall_utt", "utt"), ("wall_stream", f"{r['chunk_ms']:.0f}ms")):
            w = r.get(key)
            if w:
                extra = f" (B={w['batch_size']})" if key == "wall_batch" else ""
                cells.append(f"{name}{extra} {w['model_s']:.3f} / {w['dense_s']:.3f} = {w['ratio']:.3f}")
        lines.append(f"  {r['name']:<16} " + "   ".join(cells))
    return "\n".join(lines)


def layer_table(rows: list[dict]) -> str:
    lines = ["per-layer on-rates % (MHA / FFN), layer 1 first"]
    for r in rows:
        lines.append(f"  {r['name']:<16} " + "  ".join(f"{100 * a:5.1f}/{100 * f:5.1f}"
                                                     for a, f in zip(r["mha_on"], r["ffn_on"])))
    return "\n".join(lines)


def verdict(rows: list[dict]) -> list[str]:
    pts = [(r["flops_frac"], r["wer"]) for r in rows]
    cca = [i for i, r in enumerate(rows) if r["kind"] in GATED]
    out = []
    for i, r in enumerate(rows):
        if r["kind"] == "window":
            by = dominated_by(pts, i, cca)
            out.append(f"sliding window W={r['window']}: " + (f"Pareto-dominated by CCA {', '.join(rows[j]['name'] for j in by)}"
                                                              if by else "not dominated by any CCA run"))
    return out


def choose(rows: list[dict], base: dict | None, tolerance: float) -> dict | None:
    """The gated run with the fewest FLOPs whose WER is within ``tolerance`` (relative) of ``base``'s: how the
    released lambda is picked, on dev. None without a baseline or when no gated run qualifies."""
    if base is None:
        return None
    ok = [r for r in rows if r["kind"] in GATED and r["wer"] <= base["wer"] * (1 + tolerance)]
    return min(ok, key=lambda r: r["flops_frac"], default=None)


def plot(rows: list[dict], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    style = {"cca": ("o", "C0"), "cca-ft": ("D", "C3"), "window": ("s", "C1"), "cca-window": ("^", "C2"),
             "allon": ("*", "k")}
    for kind in ("cca", "cca-ft", "window", "cca-window", "allon"):
        rs = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["flops_frac"])
        if not rs:
            continue
        x = [100 * r["flops_frac"] for r in rs]
        y = [100 * r["wer"] for r in rs]
        err = [[100 * (r["wer"] - r["low"]) for r in rs], [100 * (r["high"] - r["wer"]) for r in rs]]
        m, c = style[kind]
        ax.errorbar(x, y, yerr=err, fmt=m + ("-" if kind != "allon" else ""), color=c, capsize=3, alpha=0.9,
                    label=KINDS[kind], markersize=9 if kind == "allon" else 6)
        for xi, yi, r in zip(x, y, rs):
            ax.annotate(_label(r), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    pts = [(100 * r["flops_frac"], 100 * r["wer"]) for r in rows]
    front = pareto_front(pts)
    if front:
        fx, fy = [pts[i][0] for i in front], [pts[i][1] for i in front]
        ax.step(fx, fy, where="post", color="C2", linestyle="--", linewidth=1.2, label="Pareto front (all runs)")
    ax.set_xlabel("encoder FLOPs, % of the same weights with all gates on (full span)")
    ax.set_ylabel("WER % (greedy), 95% CI")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inputs", nargs="+", help="run folders, .ckpt files, model folders or model names")
    ap.add_argument("--split", default="test", choices=["test", "dev"], help="corpus split")
    ap.add_argument("--corpora", nargs="+", default=["an4"], choices=["an4", "speechocean762", "alphanumeric"],
                    help="the split of each, pooled (default an4; recipe-v2 models: an4 speechocean762, their dev)")
    ap.add_argument("--manifest", default=None, help="a JSONL manifest instead of an AN4 split")
    ap.add_argument("--limit", type=int, default=None, help="first N utterances only (quick looks)")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved timing passes per mode")
    ap.add_argument("--chunk-ms", type=float, default=160.0, help="streamed timing chunk (0: whole utterance only)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=8, help="utterances per padded batch of the batch-forward "
                    "timing (0: skip it)")
    ap.add_argument("--baseline", default=None, help="the all-on reference input (default: the one with gated: false)")
    ap.add_argument("--choose", type=float, default=0.03, metavar="REL",
                    help="with --split dev: name the gated run with the fewest FLOPs within REL relative WER of "
                         "the baseline (default 0.03); never applied to test")
    ap.add_argument("--out-dir", default="reports/cca_pareto")
    args = ap.parse_args(argv)

    items = load_eval_set(None, manifest=args.manifest) if args.manifest else \
        [it for c in args.corpora for it in load_eval_set(c, args.split)]
    if args.limit:
        items = items[:args.limit]
    torch.manual_seed(0)
    rows = []
    for src in args.inputs:
        net, meta = load_model(src)
        rows.append(evaluate(net, meta, items, repeats=args.repeats, chunk_ms=args.chunk_ms, threads=args.threads,
                             batch_size=args.batch_size))
        r = rows[-1]
        print(f"  {r['name']}: WER {100 * r['wer']:.2f}%, FLOPs {100 * r['flops_frac']:.1f}%, "
              f"wall {100 * r['wall_utt']['ratio']:.1f}% utt"
              + (f", {100 * r['wall_batch']['ratio']:.1f}% batch" if r["wall_batch"] else ""), flush=True)
        if r["kind"] == "window" and r["flops_analytic"] != r["flops_counted"]:
            print(f"  warning: {r['name']}: analytic FLOPs {r['flops_analytic']} != counted {r['flops_counted']}")
    base = find_baseline(rows, args.baseline)
    names = {"an4": "AN4", "speechocean762": "speechocean762", "alphanumeric": "alphanumeric"}
    where = args.manifest or f"{' + '.join(names[c] for c in args.corpora)} {args.split}"
    title = (f"{where} ({len(items)} utterances): greedy WER vs encoder FLOPs; wall-clock at {args.threads} thread(s), "
             f"median of {args.repeats} interleaved passes")
    table = format_table(rows, base)
    notes = [f"FLOPs % and wall %: vs the same weights with all gates on and full attention span; "
             f"WER x / FLOPs x: vs {base['name'] if base else '(no all-on run given)'}; * = on the Pareto front"]
    notes += verdict(rows)
    chosen = choose(rows, base, args.choose) if args.split == "dev" and not args.manifest else None
    if base is not None and args.split == "dev" and not args.manifest:  # choices are made on dev only
        notes.append(f"choice on {where}: " + (f"{chosen['name']} ({_label(chosen)}), the fewest FLOPs within "
                                                f"{100 * args.choose:g}% relative WER of {base['name']}" if chosen
                                                else f"no gated run within {100 * args.choose:g}% relative WER"))
    print(title)
    print(table)
    print(wall_table(rows))
    print(layer_table(rows))
    print("\n".join(notes))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = plot(rows, out / "cca_pareto.png", f"{where}: CCA vs sliding window")
    atomic_write_text(out / "cca_pareto.md", f"{title}\n\n{format_table(rows, base, markdown=True)}\n\n"
                      + "\n".join(f"- {n}" for n in notes) + "\n\n![compute vs WER](cca_pareto.png)\n")
    atomic_write_text(out / "cca_pareto.json", json.dumps({"title": title, "baseline": base["name"] if base else None,
                                                            "chosen": chosen["name"] if chosen else None,
                                                            "rows": rows}, indent=1) + "\n")
    print(f"wrote {png}, {out / 'cca_pareto.md'}, {out / 'cca_pareto.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
