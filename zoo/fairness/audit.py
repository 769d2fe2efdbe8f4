"""``zoo audit``: error records -> cohorts (metadata | embedding | geo) -> metrics -> report folder.

The report folder (written atomically: a temp folder renamed into place) holds ``report.md``, ``report.json``,
``records.jsonl`` (one error record per scored utterance), ``cohorts.json`` (every cohort's speakers and membership
rule, plus the bottom cohort ``selection`` that ``scripts/fairness_mitigation.py`` fine-tunes for),
``cohort_wer.png`` (cohort WERs with speaker-bootstrap 95% CIs) and, for geography, ``regions.png``.

**Held-out selection** (``run_audit(..., scoring=...)``): cohorts and "the worst cohort" are discovered on one
set of speakers and every number is scored on a disjoint set (the report header says which: data name and
speaker count of each). Then ``records.jsonl`` holds the scoring records, ``discovery_records.jsonl`` the
discovery records (``zoo audit --records records.jsonl --discover-records discovery_records.jsonl`` redoes the
audit without decoding), and a cohort's ``speakers`` are its scoring members (``discovery_speakers``: those it
was found on).
"""
from __future__ import annotations

import json
from pathlib import Path

from zoo.errors import ZooError
from zoo.fairness import cohorts as C
from zoo.fairness.metrics import UNASSIGNED, cohort_stats, eligible, gap_summary, overall
from zoo.fairness.metrics import __doc__ as METRICS_DOC
from zoo.io import atomic_folder

METHODS = ("metadata", "embedding", "geo")


def _labels(records: list[dict], cohorts: dict[str, list[str]]) -> list[str]:
    spk_label = {s: c for c, spk in cohorts.items() for s in spk}
    return [spk_label.get(r["speaker"], UNASSIGNED) for r in records]


def _wer_of(table: dict, speakers) -> float | None:
    n = sum(table[s]["words"] for s in speakers)
    return sum(table[s]["errors"] for s in speakers) / n if n else None


def _fixed_gap(cohorts: dict[str, dict], min_words: int, min_speakers: int = 1):
    """statistic for permutation_pvalue: WER range over fixed cohorts (membership does not depend on WER)."""
    def stat(table):
        w = [_wer_of(table, v["speakers"]) for v in cohorts.values() if len(v["speakers"]) >= min_speakers
             and sum(table[s]["words"] for s in v["speakers"]) >= max(min_words, 1)]
        return max(w) - min(w) if len(w) > 1 else None
    return stat


def _signed_gap(bottom: list[str], top: list[str]):
    """statistic for permutation_pvalue on held-out speakers: WER(bottom) - WER(top), both chosen beforehand."""
    def stat(table):
        b, t = _wer_of(table, bottom), _wer_of(table, top)
        return None if b is None or t is None else b - t
    return stat


def default_columns(records: list[dict]) -> list[str]:
    """Metadata columns to audit by default: present on every record (lat/lon excluded), constant within each
    speaker (a column that varies within speakers, e.g. alphanumeric's ``kind``, is an utterance attribute) and
    with at least two values over speakers (not e.g. ``corpus``)."""
    from zoo.fairness.records import metadata_columns

    out = []
    for c in metadata_columns(records):
        per: dict[str, set] = {}
        for r in records:
            per.setdefault(r["speaker"], set()).add(C._key(r[c]))
        if all(len(v) == 1 for v in per.values()) and len(set().union(*per.values())) > 1:
            out.append(c)
    return out


def _check_present(records: list[dict], cols: list[str], which: str = "") -> None:
    from zoo.fairness.records import metadata_columns

    present = set(metadata_columns(records, exclude=()))
    bad = [c for c in cols if c not in present]
    if bad:
        raise ZooError(f"metadata column(s) {', '.join(bad)} missing (on some {which}utterances); "
                       f"available: {', '.join(sorted(present)) or 'none'}")


def _discover(records: list[dict], method: str, columns, embeddings, k, k_max, k_match, min_words, min_speakers,
              geo_min_words, max_depth, seed, which: str = "") -> list[dict]:
    """Cohort sets found on ``records`` (the discovery speakers): [{"name", "kind", "cohorts": {cohort:
    {"speakers", "rule", ...}}, "columns" (attributes the rules read), "stat" (in-sample permutation statistic;
    None = fixed membership), **extra}]."""
    sets: list[dict] = []

    def metadata_set(c):
        return {"name": c, "kind": "metadata", "cohorts": C.metadata_cohorts(records, c), "columns": [c],
                "stat": None}

    if method == "metadata":
        cols = columns or default_columns(records)
        if not cols:
            raise ZooError("no metadata columns to form cohorts from; give --metadata speakers.csv or a manifest "
                           "with extra fields (e.g. gender)")
        _check_present(records, cols, which)
        sets += [metadata_set(c) for c in cols]
        table = C.speaker_table(records, cols)
        best = C.partition_search(table, cols, min_words, min_speakers)
        if best is not None:
            def search(t):
                b = C.partition_search(t, cols, min_words, min_speakers)
                return None if b is None else b["diff"]
            sets.append({"name": "best binary partition", "kind": "partition_search", "columns": cols, "stat": search,
                         "cohorts": {best[x]["name"]: {"speakers": best[x]["speakers"], "rule": best[x]["rule"]}
                                     for x in ("high", "low")},
                         "search": {"column": best["column"], "diff": best["diff"], "tried": best["tried"]}})
    elif method == "embedding":
        if not embeddings:
            raise ZooError("the embedding method needs speaker embeddings (--speaker-model)")
        spk = {r["speaker"] for r in records}
        comparison = None
        if k_match:
            if k is not None:
                raise ZooError("give --k or --k-match, not both")
            _check_present(records, [k_match], which)
            ref = metadata_set(k_match)
            k = sum(len(v["speakers"]) >= min_speakers for v in ref["cohorts"].values())
            if k < 2:
                raise ZooError(f"--k-match {k_match}: fewer than 2 of its cohorts have >= {min_speakers} discovery "
                               "speakers — choose another column or lower --min-speakers")
            comparison = {"column": k_match, "k": k, "how": (
                f"k-means k = {k} = the number of `{k_match}` cohorts with at least {min_speakers} discovery "
                f"speakers, so the embedding and `{k_match}` gaps are ranges over the same number of cohorts")}
            sets.append(ref)
        coh, info = C.kmeans_cohorts({s: v for s, v in embeddings.items() if s in spk}, k=k, k_max=k_max, seed=seed)
        sets.insert(0, {"name": f"k-means (k={info['k']})", "kind": "embedding", "cohorts": coh, "columns": [],
                        "stat": None, "clustering": info, **({"comparison": comparison} if comparison else {})})
    else:
        missing = [c for c in ("lat", "lon") if any(c not in r for r in records)]
        if missing:
            raise ZooError(f"the geo method needs 'lat' and 'lon' per speaker (manifest fields or --metadata columns); "
                           f"missing: {', '.join(missing)}")
        table = C.speaker_table(records, ["lat", "lon"])
        regions = C.geo_partition(table, geo_min_words, max_depth, min_speakers=min_speakers)

        def tree_gap(t):
            ws = [r["wer"] for r in C.geo_partition(t, geo_min_words, max_depth, min_speakers=min_speakers)
                  if r["words"] and len(r["speakers"]) >= min_speakers]
            return max(ws) - min(ws) if len(ws) > 1 else None
        sets.append({"name": "regions", "kind": "geo", "columns": ["lat", "lon"], "stat": tree_gap,
                     "cohorts": {r["region"]: {"speakers": r["speakers"], "rule": r["rule"], "path": r["path"]}
                                 for r in regions},
                     "tree": {"min_words": geo_min_words, "max_depth": max_depth, "min_speakers": min_speakers}})
    return sets


def run_audit(records: list[dict], method: str, columns: list[str] | None = None, embeddings: dict | None = None,
              k: int | None = None, k_max: int = 8, min_words: int = 50, min_speakers: int = 3,
              geo_min_words: int = 200, max_depth: int | None = None, n_boot: int = 1000, n_perm: int = 200,
              seed: int = 0, scoring: list[dict] | None = None, k_match: str | None = None,
              data: tuple[str, str] | None = None) -> dict:
    """The report dict of an audit (see ``write_report``).

    ``records``: the **discovery** set: cohorts (partition, clusters, regions) and each set's bottom / top
    cohort are found on its speakers. ``scoring``: records of *other* speakers (ZooError if any speaker is in
    both): they are put into the discovered cohorts by the cohorts' rules (metadata values / thresholds, lat/lon
    boxes, nearest k-means centroid) and every reported WER, CI, gap and p-value is computed on them, with
    bottom / top as chosen on discovery (p-value: one-sided, WER_bottom - WER_top with membership fixed).
    ``scoring=None``: in-sample (discovered and scored on the same speakers; searched gaps are optimistic).
    ``columns``: metadata columns (default: ``default_columns``); ``embeddings``: {speaker: mean embedding} of
    both sets; ``k_match``: a metadata column: k-means k = its number of cohorts with >= ``min_speakers``
    discovery speakers, and its metadata cohorts are reported beside the clusters. Cohorts below ``min_words``
    words or ``min_speakers`` speakers are shown but never ranked (every method). ``data``: (discovery,
    scoring) names for the report header."""
    if method not in METHODS:
        raise ZooError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not records or (scoring is not None and not scoring):
        raise ZooError("no utterances to audit")
    held_out = scoring is not None
    scoring = scoring if held_out else records
    disc_spk, score_spk = {r["speaker"] for r in records}, {r["speaker"] for r in scoring}
    if held_out and disc_spk & score_spk:
        both = sorted(disc_spk & score_spk)
        raise ZooError(f"the discovery and scoring sets share {len(both)} speaker(s) ({', '.join(both[:3])}) — "
                       "held-out scoring needs disjoint speakers (use --holdout-frac to split one set)")
    if columns and held_out:
        _check_present(scoring, columns, "scoring ")
    names = data or ("audited records", "audited records")
    rep: dict = {"method": method, "overall": overall(scoring, n_boot, seed), "settings": {
        "min_words": min_words, "min_speakers": min_speakers, "n_boot": n_boot, "n_perm": n_perm, "seed": seed},
        "speakers": {"held_out": held_out, "disjoint": held_out or None,
                     "discovery": {"data": names[0], "speakers": len(disc_spk), "utterances": len(records)},
                     "scoring": {"data": names[1], "speakers": len(score_spk), "utterances": len(scoring)}},
        "cohort_sets": []}
    if held_out:
        rep["discovery_overall"] = overall(records, n_boot, seed)
    for d in _discover(records, method, columns, embeddings, k, k_max, k_match, min_words, min_speakers,
                       geo_min_words, max_depth, seed, "discovery " if held_out else ""):
        mw = min(min_words, geo_min_words) if d["kind"] == "geo" else min_words  # regions: >= geo_min_words
        coh = d.pop("cohorts")
        stat = d.pop("stat")
        cols = d.pop("columns")
        members = {c: v["speakers"] for c, v in coh.items()}
        if not held_out:
            rows = cohort_stats(records, _labels(records, members), n_boot=n_boot, seed=seed)
            summ = gap_summary(rows, mw, min_speakers)
            sig = C.permutation_pvalue(C.speaker_table(records, cols), stat or _fixed_gap(coh, mw, min_speakers),
                                       n_perm, seed)
            cohorts = coh
        else:
            drows = cohort_stats(records, _labels(records, members), n_boot=n_boot, seed=seed)
            dsum = gap_summary(drows, mw, min_speakers)
            d["discovery"] = {"rows": drows, "summary": dsum}
            table = C.speaker_table(scoring, cols)
            assigned = C.assign_cohorts(coh, table, embeddings)
            cohorts = {c: {**v, "speakers": assigned[c], "discovery_speakers": v["speakers"]} for c, v in coh.items()}
            rows = cohort_stats(scoring, _labels(scoring, assigned), n_boot=n_boot, seed=seed)
            if "gap_abs" in dsum:
                summ = gap_summary(rows, mw, min_speakers, fixed=(dsum["bottom"], dsum["top"]))
            else:
                summ = {**gap_summary([], mw, min_speakers), "eligible": sum(eligible(r, mw, min_speakers)
                                                                             for r in rows), "unscored": []}
            sig = C.permutation_pvalue(table, _signed_gap(assigned[summ["bottom"]], assigned[summ["top"]]),
                                       n_perm, seed) if "gap_abs" in summ else None
            if sig:
                sig["test"] = "one-sided: WER(bottom) - WER(top), both chosen on discovery, membership fixed"
        if "tree" in d:
            geo = C.speaker_table(scoring, ["lat", "lon"])
            d["speakers_geo"] = {s: [v["lat"], v["lon"]] for s, v in geo.items()}
        rep["cohort_sets"].append({"name": d.pop("name"), "kind": d.pop("kind"), "rows": rows, "summary": summ,
                                   "cohorts": cohorts, "significance": sig, **d})
    # the cohort to mitigate for, chosen on the discovery speakers: the high side of the best binary partition
    # (metadata), else the bottom cohort of the method's cohort set with the largest WER range
    primary = {"metadata": ("partition_search", "metadata"), "embedding": ("embedding",), "geo": ("geo",)}[method]

    def chosen(s):
        return s["discovery"]["summary"] if held_out else s["summary"]
    cands = [s for s in rep["cohort_sets"] if s["kind"] in primary and "gap_abs" in chosen(s)]
    if cands:
        top = next((s for s in cands if s["kind"] == "partition_search"), None) or \
            max(cands, key=lambda s: chosen(s)["gap_abs"])
        b = chosen(top)["bottom"]
        c = top["cohorts"][b]
        rep["selection"] = {"cohort_set": top["name"], "cohort": b, "speakers": c["speakers"], "rule": c["rule"],
                            "chosen_on": "discovery speakers" if held_out else "audited speakers (in-sample)",
                            **({"discovery_speakers": c["discovery_speakers"]} if held_out else {})}
    return rep


# --- output ------------------------------------------------------------------------------------------------
def _pct(x) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.2f}"


def _provenance(rep: dict) -> list[str]:
    sp = rep["speakers"]
    d, c = sp["discovery"], sp["scoring"]
    if sp["held_out"]:
        return [f"**Held-out selection.** Cohorts (and each set's bottom / top cohort) are *discovered* on "
                f"{d['data']} ({d['speakers']} speakers, {d['utterances']} utterances); every WER, CI, gap and "
                f"p-value below is *scored* on {c['data']} ({c['speakers']} speakers, {c['utterances']} "
                "utterances). The two speaker sets are disjoint (checked). Scoring speakers join discovered "
                "cohorts by the cohorts' rules (metadata value / threshold, lat/lon box, nearest k-means "
                f"centroid); those no rule selects are `{UNASSIGNED}`.", ""]
    return [f"**In-sample.** Cohorts are discovered and scored on the same {c['speakers']} speakers "
            f"({c['data']}): a searched gap is optimistic (see the p-values); `--holdout-frac` or `--discover-*` "
            "score on held-out speakers.", ""]


def _gap_lines(s: dict, held_out: bool) -> list[str]:
    m = s["summary"]
    if "gap_abs" in m:
        gap = "undefined (top WER 0)" if m["gap"] is None else f"{100 * m['gap']:.1f}%"
        how = "; both chosen on discovery, measured on scoring" if held_out else ""
        return [f"- WER gap (bottom {m['bottom']} vs top {m['top']}{how}): **{gap}** ({_pct(m['gap_abs'])} points)",
                f"- bottom-cohort share: {100 * m['bottom_share_speakers']:.1f}% of speakers, "
                f"{100 * m['bottom_share_words']:.1f}% of words",
                f"- cohort WER mean {_pct(m['mean'])}%, max {_pct(m['max'])}%, "
                f"variance {1e4 * m['variance']:.2f} (%²) over {m['eligible']} eligible cohorts"]
    need = f">= {m['min_words']} words and >= {m['min_speakers']} speakers"
    if m.get("unscored"):
        return [f"- discovered cohort(s) {', '.join(m['unscored'])} lack {need} among the scoring speakers: "
                "no held-out gap"]
    return [f"- fewer than two cohorts with {need}{' on the discovery speakers' if held_out else ''}: no gap"]


def format_markdown(rep: dict) -> str:
    o = rep["overall"]
    held_out = rep["speakers"]["held_out"]
    L = [f"# ASR fairness audit: {rep.get('model', '?')}", "",
         f"Data: {rep.get('data', '?')}; method: **{rep['method']}**; normaliser '{rep.get('normalizer', '?')}'.", "",
         *_provenance(rep),
         f"Overall WER{' (scoring speakers)' if held_out else ''} **{_pct(o['wer'])}%** (95% CI "
         f"{_pct(o['low'])}–{_pct(o['high'])}, speaker bootstrap), {o['utterances']} utterances, "
         f"{o['speakers']} speakers, {o['words']} words.", ""]
    ms = rep["settings"]["min_speakers"]
    for s in rep["cohort_sets"]:
        L += [f"## {s['name']} ({s['kind']})", ""]
        if "clustering" in s:
            c = s["clustering"]
            sil = ", ".join(f"k={k}: {v:.3f}" for k, v in c["silhouette"].items())
            L += [f"k = {c['k']} ({c['criterion']}; silhouette {sil or 'n/a'}).", ""]
        if "comparison" in s:
            L += [f"Compared at the same number of cohorts: {s['comparison']['how']}.", ""]
        if "search" in s:
            q = s["search"]
            L += [f"Searched {q['tried']} binary partitions{' of the discovery speakers' if held_out else ''}; best "
                  f"by |WER_A − WER_B| = {_pct(q['diff'])} points on column `{q['column']}`.", ""]
        if "tree" in s:
            L += [f"Word-weighted regression tree on (lat, lon): min {s['tree']['min_words']} words and "
                  f"{s['tree']['min_speakers']} speakers per region, max depth {s['tree']['max_depth']}; "
                  f"{len(s['cohorts'])} regions.", ""]
        if held_out:
            dm = s["discovery"]["summary"]
            L += [(f"On the discovery speakers: bottom `{dm['bottom']}` ({_pct(dm['wer_bottom'])}%), top "
                   f"`{dm['top']}` ({_pct(dm['wer_top'])}%) of {dm['eligible']} eligible cohorts; the table and "
                   "gap are the scoring speakers'.") if "gap_abs" in dm else
                  "On the discovery speakers fewer than two cohorts are eligible.", ""]
        mw = s["summary"]["min_words"]
        disc = {r["cohort"]: r for r in s["discovery"]["rows"]} if held_out else {}
        L += ["| cohort | WER % | 95% CI | speakers | utterances | words | share of speakers %"
              + (" | discovery WER % (speakers)" if held_out else "") + " |",
              "|---|---:|---|---:|---:|---:|---:" + ("|---:" if held_out else "") + "|"]
        for r in s["rows"]:
            c = s["cohorts"].get(r["cohort"], {})
            name = r["cohort"] + (f" ({c['path']})" if "path" in c else "") + \
                ("" if eligible(r, mw, ms) else " †")
            d = disc.get(r["cohort"])
            L.append(f"| {name} | {_pct(r['wer'])} | {_pct(r['low'])}–{_pct(r['high'])} | {r['speakers']} | "
                     f"{r['utterances']} | {r['words']} | {100 * r['share_speakers']:.1f} |"
                     + ((f" {_pct(d['wer'])} ({d['speakers']}) |" if d else " – |") if held_out else ""))
        L.append("")
        if not all(eligible(r, mw, ms) for r in s["rows"]):
            L.append(f"† shown, not ranked: fewer than {mw} words or {ms} speakers"
                     + (" (or in no discovered cohort)." if held_out else "."))
        empty = [c for c, v in s["cohorts"].items() if not v["speakers"]]
        if empty:
            L.append(f"Discovered cohorts with no scoring speakers: {', '.join(empty)}.")
        L += ["", *_gap_lines(s, held_out)]
        sig = s.get("significance")
        if sig and sig.get("observed") is not None:
            if held_out:
                how = "on the scoring speakers; one-sided, bottom and top fixed from discovery"
            else:
                how = "the search rerun on each" if s["kind"] in ("partition_search", "geo") else \
                    "cohort membership fixed"
            L.append(f"- permutation test ({sig['n_perm']} shuffles of speaker WERs across speakers, {how}): "
                     f"p = {sig['p_value']:.3f}")
        L.append("")
    cmp = next((s["comparison"] for s in rep["cohort_sets"] if "comparison" in s), None)
    if cmp:
        L += [f"## Embedding vs metadata (`{cmp['column']}`) at k = {cmp['k']}", "",
              "| cohort set | cohorts | eligible | gap % | gap points | p |", "|---|---:|---:|---:|---:|---:|"]
        for s in rep["cohort_sets"]:
            m, sig = s["summary"], s.get("significance") or {}
            gap = "n/a" if m.get("gap") is None else f"{100 * m['gap']:.1f}"
            p = "n/a" if sig.get("observed") is None else f"{sig['p_value']:.3f}"
            L.append(f"| {s['name']} | {len(s['cohorts'])} | {m['eligible']} | {gap} | {_pct(m.get('gap_abs'))} | "
                     f"{p} |")
        L.append("")
    if "selection" in rep:
        sel = rep["selection"]
        L += ["## Selected cohort for mitigation", "",
              f"Bottom cohort `{sel['cohort']}` of `{sel['cohort_set']}`, chosen on the {sel['chosen_on']} "
              f"({len(sel.get('discovery_speakers', sel['speakers']))} speakers there"
              + (f"; {len(sel['speakers'])} scoring speakers" if held_out else "")
              + "); its rule is in cohorts.json (`selection`).", ""]
    L += ["## Definitions", "", METRICS_DOC.strip(), ""]
    return "\n".join(L)


def _short(name: str, n: int = 40) -> str:
    return name if len(name) <= n else name[:n - 1] + "…"


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
        ax.set_yticks(list(y), [f"{_short(r['cohort'])} ({r['speakers']} spk)" for r in rows], fontsize=8)
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
    vals = [v for v in wer.values() if v == v] or [0.0]
    norm = plt.Normalize(min(vals), max(vals) if max(vals) > min(vals) else min(vals) + 1)
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, c in cset["cohorts"].items():
        r = c["rule"]
        la = [box_lat[0] if r["lat"][0] is None else r["lat"][0], box_lat[1] if r["lat"][1] is None else r["lat"][1]]
        lo = [box_lon[0] if r["lon"][0] is None else r["lon"][0], box_lon[1] if r["lon"][1] is None else r["lon"][1]]
        w = wer.get(name, float("nan"))
        ax.add_patch(Rectangle((lo[0], la[0]), lo[1] - lo[0], la[1] - la[0],
                               facecolor=cmap(norm(w)) if w == w else "lightgrey",
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


def write_report(rep: dict, records: list[dict], out: str | Path, discovery: list[dict] | None = None) -> Path:
    """Write the report folder atomically (see the module docstring). ``records``: the scoring records;
    ``discovery``: the discovery records of a held-out audit."""
    from zoo.fairness.records import write_records

    cohorts = {"method": rep["method"], "speakers": rep["speakers"],
               "cohort_sets": {s["name"]: s["cohorts"] for s in rep["cohort_sets"]}, "selection": rep.get("selection")}
    try:
        with atomic_folder(out, marker="report.json") as tmp:
            (tmp / "report.md").write_text(format_markdown(rep))
            (tmp / "report.json").write_text(json.dumps(rep, indent=2, default=float) + "\n")
            (tmp / "cohorts.json").write_text(json.dumps(cohorts, indent=2) + "\n")
            write_records(records, tmp / "records.jsonl")
            if discovery is not None:
                write_records(discovery, tmp / "discovery_records.jsonl")
            plot_cohorts(rep, tmp / "cohort_wer.png")
            for s in rep["cohort_sets"]:
                if s["kind"] == "geo":
                    plot_regions(s, tmp / "regions.png")
            for f in tmp.iterdir():
                f.chmod(0o644)
    except FileExistsError as e:
        raise ZooError(str(e)) from None
    return Path(out)
