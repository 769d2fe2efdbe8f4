"""``zoo audit``: error records -> cohorts (metadata | embedding | geo) -> metrics -> report folder.

The report folder (written atomically: a temp folder renamed into place) holds ``report.md``, ``report.json``,
``records.jsonl`` (one error record per utterance), ``cohorts.json`` (every cohort's speakers and membership
rule, plus the bottom cohort ``selection`` that ``scripts/fairness_mitigation.py`` fine-tunes for),
``cohort_wer.png`` (cohort WERs with speaker-bootstrap 95% CIs) and, for geography, ``regions.png``.
"""
from __future__ import annotations

import json
from pathlib import Path

from zoo.errors import ZooError
from zoo.fairness import cohorts as C
from zoo.fairness.metrics import __doc__ as METRICS_DOC
from zoo.fairness.metrics import cohort_stats, gap_summary, overall
from zoo.io import atomic_folder

METHODS = ("metadata", "embedding", "geo")


def _cohort_set(name: str, kind: str, records: list[dict], cohorts: dict[str, dict], min_words: int,
                n_boot: int, seed: int, **extra) -> dict:
    spk_label = {s: c for c, v in cohorts.items() for s in v["speakers"]}
    rows = cohort_stats(records, C.labels_for(records, spk_label), n_boot=n_boot, seed=seed)
    return {"name": name, "kind": kind, "rows": rows, "summary": gap_summary(rows, min_words),
            "cohorts": cohorts, **extra}


def _fixed_gap(cohorts: dict[str, dict], min_words: int):
    """statistic for permutation_pvalue: WER range over fixed cohorts (membership does not depend on WER)."""
    def stat(table):
        w = []
        for v in cohorts.values():
            e = sum(table[s]["errors"] for s in v["speakers"]); n = sum(table[s]["words"] for s in v["speakers"])
            if n >= max(min_words, 1):
                w.append(e / n)
        return max(w) - min(w) if len(w) > 1 else None
    return stat


def run_audit(records: list[dict], method: str, columns: list[str] | None = None, embeddings: dict | None = None,
              k: int | None = None, k_max: int = 8, min_words: int = 50, min_speakers: int = 2,
              geo_min_words: int = 200, max_depth: int | None = None, n_boot: int = 1000, n_perm: int = 200,
              seed: int = 0) -> dict:
    """The report dict of an audit (see ``write_report``). ``columns``: metadata columns to use (default: all
    columns present on every record, lat/lon excluded); ``embeddings``: {speaker: mean embedding}."""
    if method not in METHODS:
        raise ZooError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not records:
        raise ZooError("no utterances to audit")
    from zoo.fairness.records import metadata_columns

    rep: dict = {"method": method, "overall": overall(records, n_boot, seed), "settings": {
        "min_words": min_words, "min_speakers": min_speakers, "n_boot": n_boot, "n_perm": n_perm, "seed": seed},
        "cohort_sets": []}
    sets = rep["cohort_sets"]
    if method == "metadata":
        cols = columns or metadata_columns(records)
        if not cols:
            raise ZooError("no metadata columns to form cohorts from; give --metadata speakers.csv or a manifest "
                           "with extra fields (e.g. gender)")
        present = set(metadata_columns(records, exclude=()))
        bad = [c for c in cols if c not in present]
        if bad:
            raise ZooError(f"metadata column(s) {', '.join(bad)} missing (on some utterances); "
                           f"available: {', '.join(sorted(present)) or 'none'}")
        for c in cols:
            coh = C.metadata_cohorts(records, c)
            sets.append(_cohort_set(c, "metadata", records, coh, min_words, n_boot, seed,
                                    significance=C.permutation_pvalue(C.speaker_table(records),
                                                                      _fixed_gap(coh, min_words), n_perm, seed)))
        table = C.speaker_table(records, cols)

        def search(t):
            b = C.partition_search(t, cols, min_words, min_speakers)
            return None if b is None else b["diff"]
        best = C.partition_search(table, cols, min_words, min_speakers)
        if best is not None:
            coh = {best[s]["name"]: {"speakers": best[s]["speakers"], "rule": best[s]["rule"]} for s in ("high", "low")}
            sets.append(_cohort_set("best binary partition", "partition_search", records, coh, min_words, n_boot, seed,
                                    search={"column": best["column"], "diff": best["diff"], "tried": best["tried"]},
                                    significance=C.permutation_pvalue(table, search, n_perm, seed)))
    elif method == "embedding":
        if not embeddings:
            raise ZooError("the embedding method needs speaker embeddings (--speaker-model)")
        coh, info = C.kmeans_cohorts(embeddings, k=k, k_max=k_max, seed=seed)
        sets.append(_cohort_set(f"k-means (k={info['k']})", "embedding", records, coh, min_words, n_boot, seed,
                                clustering=info, significance=C.permutation_pvalue(
                                    C.speaker_table(records), _fixed_gap(coh, min_words), n_perm, seed)))
    else:
        missing = [c for c in ("lat", "lon") if any(c not in r for r in records)]
        if missing:
            raise ZooError(f"the geo method needs 'lat' and 'lon' per speaker (manifest fields or --metadata columns); "
                           f"missing: {', '.join(missing)}")
        table = C.speaker_table(records, ["lat", "lon"])
        regions = C.geo_partition(table, geo_min_words, max_depth)
        coh = {r["region"]: {"speakers": r["speakers"], "rule": r["rule"], "path": r["path"]} for r in regions}

        def tree_gap(t):
            ws = [r["wer"] for r in C.geo_partition(t, geo_min_words, max_depth) if r["words"]]
            return max(ws) - min(ws) if len(ws) > 1 else None
        sets.append(_cohort_set("regions", "geo", records, coh, min(min_words, geo_min_words), n_boot, seed,
                                tree={"min_words": geo_min_words, "max_depth": max_depth},
                                significance=C.permutation_pvalue(table, tree_gap, n_perm, seed),
                                speakers_geo={s: [v["lat"], v["lon"]] for s, v in table.items()}))
    # the cohort to mitigate for: the high side of the best binary partition (metadata), else the bottom cohort
    # of the cohort set with the largest WER range
    scored = [s for s in sets if s["summary"].get("eligible", 0) >= 2]
    if scored:
        top = next((s for s in scored if s["kind"] == "partition_search"), None) or \
            max(scored, key=lambda s: s["summary"]["gap_abs"])
        b = top["summary"]["bottom"]
        rep["selection"] = {"cohort_set": top["name"], "cohort": b, "speakers": top["cohorts"][b]["speakers"],
                            "rule": top["cohorts"][b]["rule"]}
    return rep


# --- output ------------------------------------------------------------------------------------------------
def _pct(x) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.2f}"


def format_markdown(rep: dict) -> str:
    o = rep["overall"]
    L = [f"# ASR fairness audit: {rep.get('model', '?')}", "",
         f"Data: {rep.get('data', '?')}; method: **{rep['method']}**; normaliser '{rep.get('normalizer', '?')}'.", "",
         f"Overall WER **{_pct(o['wer'])}%** (95% CI {_pct(o['low'])}–{_pct(o['high'])}, speaker bootstrap), "
         f"{o['utterances']} utterances, {o['speakers']} speakers, {o['words']} words.", ""]
    for s in rep["cohort_sets"]:
        L += [f"## {s['name']} ({s['kind']})", ""]
        if "clustering" in s:
            c = s["clustering"]
            sil = ", ".join(f"k={k}: {v:.3f}" for k, v in c["silhouette"].items())
            L += [f"k = {c['k']} ({c['criterion']}; silhouette {sil or 'n/a'}).", ""]
        if "search" in s:
            q = s["search"]
            L += [f"Searched {q['tried']} binary partitions; best by |WER_A − WER_B| = {_pct(q['diff'])} points "
                  f"on column `{q['column']}`.", ""]
        if "tree" in s:
            L += [f"Word-weighted regression tree on (lat, lon): min {s['tree']['min_words']} words per region, "
                  f"max depth {s['tree']['max_depth']}; {len(s['rows'])} regions.", ""]
        L += ["| cohort | WER % | 95% CI | speakers | utterances | words | share of speakers % |",
              "|---|---:|---|---:|---:|---:|---:|"]
        for r in s["rows"]:
            c = s["cohorts"][r["cohort"]]
            name = r["cohort"] + (f" ({c['path']})" if "path" in c else "")
            L.append(f"| {name} | {_pct(r['wer'])} | {_pct(r['low'])}–{_pct(r['high'])} | {r['speakers']} | "
                     f"{r['utterances']} | {r['words']} | {100 * r['share_speakers']:.1f} |")
        m = s["summary"]
        L.append("")
        if m.get("eligible", 0) >= 2:
            gap = "undefined (top WER 0)" if m["gap"] is None else f"{100 * m['gap']:.1f}%"
            L += [f"- WER gap (bottom {m['bottom']} vs top {m['top']}): **{gap}** ({_pct(m['gap_abs'])} points)",
                  f"- bottom-cohort share: {100 * m['bottom_share_speakers']:.1f}% of speakers, "
                  f"{100 * m['bottom_share_words']:.1f}% of words",
                  f"- cohort WER mean {_pct(m['mean'])}%, max {_pct(m['max'])}%, "
                  f"variance {1e4 * m['variance']:.2f} (%²)"]
        else:
            L.append(f"- fewer than two cohorts with >= {m['min_words']} words: no gap")
        sig = s.get("significance")
        if sig and sig.get("observed") is not None:
            how = "the search rerun on each" if s["kind"] in ("partition_search", "geo") else "cohort membership fixed"
            L.append(f"- permutation test ({sig['n_perm']} shuffles of speaker WERs across speakers, {how}): "
                     f"p = {sig['p_value']:.3f}")
        L.append("")
    if "selection" in rep:
        sel = rep["selection"]
        L += ["## Selected cohort for mitigation", "",
              f"Bottom cohort `{sel['cohort']}` of `{sel['cohort_set']}` ({len(sel['speakers'])} speakers); "
              "its rule is in cohorts.json (`selection`).", ""]
    L += ["## Definitions", "", METRICS_DOC.strip(), ""]
    return "\n".join(L)


def plot_cohorts(rep: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = rep["cohort_sets"]
    heights = [max(1.6, 0.35 * len(s["rows"]) + 0.9) for s in sets]
    fig, axes = plt.subplots(len(sets), 1, figsize=(7, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, s in zip(axes[:, 0], sets):
        rows = s["rows"][::-1]
        y = range(len(rows))
        w = [100 * r["wer"] for r in rows]
        err = [[100 * (r["wer"] - r["low"]) for r in rows], [100 * (r["high"] - r["wer"]) for r in rows]]
        ax.barh(list(y), w, xerr=err, capsize=3, color="tab:blue", alpha=0.8)
        ax.set_yticks(list(y), [f"{r['cohort']} ({r['speakers']} spk)" for r in rows], fontsize=8)
        ax.axvline(100 * rep["overall"]["wer"], color="k", ls="--", lw=1, label="overall")
        ax.set_title(s["name"], fontsize=10)
        ax.set_xlabel("WER % (95% CI, speaker bootstrap)")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_regions(cset: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    geo = cset["speakers_geo"]
    lats = [v[0] for v in geo.values()]; lons = [v[1] for v in geo.values()]
    pad = 0.02 * max(max(lats) - min(lats), max(lons) - min(lons), 1e-6)
    box_lat, box_lon = (min(lats) - pad, max(lats) + pad), (min(lons) - pad, max(lons) + pad)
    wer = {r["cohort"]: 100 * r["wer"] for r in cset["rows"]}
    vals = [v for v in wer.values() if v == v]
    norm = plt.Normalize(min(vals), max(vals) if max(vals) > min(vals) else min(vals) + 1)
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, c in cset["cohorts"].items():
        r = c["rule"]
        la = [box_lat[0] if r["lat"][0] is None else r["lat"][0], box_lat[1] if r["lat"][1] is None else r["lat"][1]]
        lo = [box_lon[0] if r["lon"][0] is None else r["lon"][0], box_lon[1] if r["lon"][1] is None else r["lon"][1]]
        ax.add_patch(Rectangle((lo[0], la[0]), lo[1] - lo[0], la[1] - la[0], facecolor=cmap(norm(wer[name])),
                               alpha=0.35, edgecolor="k", lw=0.6))
        ax.text((lo[0] + lo[1]) / 2, (la[0] + la[1]) / 2, name, fontsize=7, ha="center", va="center")
    spk_region = {s: n for n, c in cset["cohorts"].items() for s in c["speakers"]}
    sc = ax.scatter(lons, lats, c=[wer[spk_region[s]] for s in geo], cmap=cmap, norm=norm, s=12, edgecolors="k",
                    linewidths=0.3)
    fig.colorbar(sc, ax=ax, label="region WER %")
    ax.set_xlim(*box_lon); ax.set_ylim(*box_lat)
    ax.set_xlabel("longitude"); ax.set_ylabel("latitude")
    ax.set_title("regions (word-weighted lat/lon tree), coloured by WER", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(rep: dict, records: list[dict], out: str | Path) -> Path:
    """Write the report folder atomically (see the module docstring)."""
    from zoo.fairness.records import write_records

    cohorts = {"method": rep["method"], "cohort_sets": {s["name"]: s["cohorts"] for s in rep["cohort_sets"]},
               "selection": rep.get("selection")}
    try:
        with atomic_folder(out, marker="report.json") as tmp:
            (tmp / "report.md").write_text(format_markdown(rep))
            (tmp / "report.json").write_text(json.dumps(rep, indent=2, default=float) + "\n")
            (tmp / "cohorts.json").write_text(json.dumps(cohorts, indent=2) + "\n")
            write_records(records, tmp / "records.jsonl")
            plot_cohorts(rep, tmp / "cohort_wer.png")
            for s in rep["cohort_sets"]:
                if s["kind"] == "geo":
                    plot_regions(s, tmp / "regions.png")
            for f in tmp.iterdir():
                f.chmod(0o644)
    except FileExistsError as e:
        raise ZooError(str(e)) from None
    return Path(out)
