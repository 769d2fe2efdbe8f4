"""zoo.evaluation.peers: the ARPA trigram writer (normalised for every history; read the same by pocketsphinx), the
dictionary builder, output normalisation, and the pocketsphinx adapter on real AN4 test audio."""
from __future__ import annotations

import itertools

import pytest

from zoo.errors import ZooError
from zoo.evaluation.peers import (
    BOS,
    EOS,
    build_dictionary,
    normalize_hyp,
    pocketsphinx_available,
    read_lexicon,
    write_arpa,
)

TOY = [s.split() for s in ["A B C", "A B D", "B C", "C C C A", "D", "A B C", "B A"]]
needs_ps = pytest.mark.skipif(not pocketsphinx_available(), reason="pocketsphinx not installed (zoo[peers])")


def read_arpa(path):
    """{order: {ngram tuple: (log10 p, log10 bow)}} and the \\data\\ counts, parsed independently of
    zoo.evaluation.peers."""
    grams, counts, order = {1: {}, 2: {}, 3: {}}, {}, None
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.startswith("ngram "):
            n, c = line[6:].split("=")
            counts[int(n)] = int(c)
        elif line.endswith("-grams:"):
            order = int(line[1])
        elif line == "\\end\\":
            order = None
        elif order and line:
            f = line.split()
            words = tuple(f[1:1 + order])
            bow = float(f[1 + order]) if len(f) > 1 + order else 0.0
            grams[order][words] = (float(f[0]), bow)
    return grams, counts


def arpa_log10(grams, w, hist) -> float:
    """log10 p(w | hist) by the ARPA backoff rule (hist: up to 2 words, oldest first)."""
    hist = tuple(hist)[-2:]
    if hist + (w,) in grams[len(hist) + 1]:
        return grams[len(hist) + 1][hist + (w,)][0]
    bow = grams[len(hist)][hist][1] if hist in grams[len(hist)] else 0.0
    return bow + arpa_log10(grams, w, hist[1:])


@pytest.mark.parametrize("method,discount", [("witten-bell", 0.0), ("absolute", 0.7), ("fixed-mass", 0.5)])
def test_arpa_is_normalised_for_every_history(tmp_path, method, discount):
    path = write_arpa(TOY, tmp_path / "lm.arpa", method, discount)
    grams, counts = read_arpa(path)
    assert counts == {n: len(grams[n]) for n in (1, 2, 3)}
    vocab = sorted(w for (w,) in grams[1] if w != BOS)
    assert vocab == sorted({w for s in TOY for w in s} | {EOS})
    assert grams[1][(BOS,)][0] <= -99  # <s> is a context only
    histories = [()] + [(h,) for h in vocab + [BOS]] + list(itertools.product([BOS] + vocab, vocab))
    for h in histories:
        total = sum(10 ** arpa_log10(grams, w, h) for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-4), (method, h, total)
    # every listed n-gram is a real probability, and a seen continuation beats an unseen one
    assert all(lp <= 0 for g in grams.values() for lp, _ in g.values())
    assert arpa_log10(grams, "C", ("A", "B")) > arpa_log10(grams, "A", ("A", "B"))
    assert arpa_log10(grams, "B", (BOS, "A")) > arpa_log10(grams, EOS, (BOS, "A"))


def test_arpa_rejects_bad_settings(tmp_path):
    with pytest.raises(ZooError, match="no text"):
        write_arpa([], tmp_path / "x.arpa")
    with pytest.raises(ZooError, match="smoothing"):
        write_arpa(TOY, tmp_path / "x.arpa", "kneser-ney")
    with pytest.raises(ZooError, match="out of range"):
        write_arpa(TOY, tmp_path / "x.arpa", "fixed-mass", 1.0)


def test_lm_never_sees_test_transcripts(an4_root):
    from zoo.evaluation.peers import training_sentences

    with pytest.raises(ZooError, match="test transcripts"):
        training_sentences(("an4",), an4_root.parent, splits=("train", "test"))
    upstream_train = (an4_root / "etc" / "an4_train.fileids").read_text().split()
    both = training_sentences(("an4",), an4_root.parent, splits=("train", "dev"))
    assert len(both) == len(upstream_train)  # train + dev = upstream's training set, nothing more
    assert len(training_sentences(("an4",), an4_root.parent)) < len(both)
    assert not any(w in ("<S>", "</S>", "<s>", "</s>") for s in both for w in s)


@needs_ps
def test_pocketsphinx_reads_the_arpa_file_as_we_do(tmp_path):
    import pocketsphinx

    path = write_arpa(TOY, tmp_path / "lm.arpa", "witten-bell")
    grams, _ = read_arpa(path)
    lmath = pocketsphinx.LogMath()
    lm = pocketsphinx.NGramModel(pocketsphinx.Config(loglevel="FATAL"), lmath, str(path))
    for w, h in [("C", ("A", "B")), ("A", ("A", "B")), ("D", ("C",)), ("B", ()), (EOS, ("C", "C"))]:
        ours = arpa_log10(grams, w, h)
        theirs = lmath.log_to_log10(lm.prob([w, *reversed(h)]))  # word first, then history, most recent first
        assert theirs == pytest.approx(ours, abs=0.01), (w, h)


def test_lexicon_and_dictionary(tmp_path):
    a = tmp_path / "a.dic"
    a.write_text("A AH\nA(2) EY\nTWO T UW\n")
    b = tmp_path / "b.txt"
    b.write_text("TWO\tT UW1\nWE\tW IY1\nZED\tZ EH1 D\nODD\tQQ D\n")
    lex_a, lex_b = read_lexicon(a), read_lexicon(b)
    assert lex_a["A"] == ["AH", "EY"] and lex_b["WE"] == ["W IY"]
    d, missing = build_dictionary(["A", "TWO", "WE", "ODD", "NOPE"], [lex_a, lex_b], {"AH", "EY", "T", "UW", "W",
                                                                                      "IY", "D"})
    assert d == {"A": ["AH", "EY"], "TWO": ["T UW"], "WE": ["W IY"]}
    assert missing == ["NOPE", "ODD"]  # ODD's only pronunciation has a phone the acoustic model lacks
    bad = tmp_path / "bad.dic"
    bad.write_text("A AH\nLONELY\n")
    with pytest.raises(ZooError, match="bad.dic:2"):
        read_lexicon(bad)


def test_normalize_hyp():
    assert normalize_hyp("<s> one two(2) [NOISE] <sil> 42 </s>") == "ONE TWO FOUR TWO"
    assert normalize_hyp("") == ""


@needs_ps
def test_pocketsphinx_peer_transcribes_real_an4(tmp_path, an4_root, an4_wavs):
    from zoo.audio import load_audio
    from zoo.evaluation.peers import PocketsphinxPeer
    from zoo.metrics.wer import error_rates

    peer = PocketsphinxPeer(data_dir=an4_root.parent, corpora=("an4",), cache_dir=tmp_path / "cache")
    assert peer.lm_path.is_file() and peer.dict_path.is_file() and not peer.missing_words
    assert "ngram 3=" in peer.lm_path.read_text()
    refs = dict(line.rsplit(" (", 1)[::-1] for line in (an4_root / "etc" / "an4_test.transcription").read_text()
                .splitlines())
    wavs = [load_audio(p, 16000) for p in an4_wavs[:2]]
    hyps = peer.transcribe([w.numpy() for w in wavs])
    assert len(hyps) == 2 and all(hyps)
    assert all(h == h.upper() and not any(ch.isdigit() for ch in h) for h in hyps)
    wer = error_rates(hyps, [refs[p.stem + ")"] for p in an4_wavs[:2]])["wer"]
    assert wer < 0.5, (hyps, wer)  # it recognises the words, not just something
    s = peer.stream()
    for i in range(0, wavs[1].numel(), 2560):
        s.accept_waveform(wavs[1][i:i + 2560])
    assert s.finalize()
    # cached files are reused, not rewritten
    mtime = peer.lm_path.stat().st_mtime_ns
    again = PocketsphinxPeer(data_dir=an4_root.parent, corpora=("an4",), cache_dir=tmp_path / "cache")
    assert again.lm_path == peer.lm_path and peer.lm_path.stat().st_mtime_ns == mtime
