"""Word n-gram LM (modified Kneser-Ney, ARPA) scored on characters (prefix tree, look-ahead, OOV penalty), and
its shallow fusion in transducer beam search."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zoo.models.decoding import beam_search
from zoo.models.lm import WordNgramLM
from zoo.text import CharTokenizer

CORPUS = ["ENTER SIX TWO FOUR", "ERASE O T H F I FIVE ZERO", "RUBOUT", "GO", "STOP", "ENTER FIVE", "NO", "YES",
          "REPEAT", "HELP", "SIX SIX SEVEN", "TWENTY FOUR", "GO GO STOP", "SIX SIXTY", "ENTER SEVENTY SIX"]
TOK = CharTokenizer()


@pytest.fixture(scope="module")
def lm():
    return WordNgramLM.from_texts(CORPUS, order=3)


def walk(lm, text: str, state=None):
    st = lm.initial_state() if state is None else state
    for t in TOK.encode(text):
        st = lm.next_state(st, t)
    return st


def histories(lm):
    ids = lm.word_ids
    return [(0,), (0, ids["ENTER"]), (ids["SIX"], ids["SIX"]), (ids["GO"], ids["STOP"]),  # seen
            (ids["HELP"], ids["ZERO"]), (lm.unk,), (0, lm.unk), (lm.unk, ids["SIX"])]  # unseen / OOV


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_word_probabilities_sum_to_one(order):
    lm = WordNgramLM.from_texts(CORPUS, order=order)
    assert lm.words == sorted({w for s in CORPUS for w in s.split()})  # vocabulary = the training words
    for h in histories(lm):
        p = lm.word_probs(h)
        assert p.shape == (lm.n_words + 3,) and p[0] == 0.0 and p[lm.unk] == 0.0  # <s>, <unk>: never predicted
        assert abs(p[1:lm.eos + 1].sum() - 1.0) < 1e-9  # vocabulary + </s>
        assert (p[1:lm.eos + 1] > 0).all()


def test_kneser_ney_prefers_seen_continuations(lm):
    assert lm.word_logprob("FOUR", ["ENTER", "SIX", "TWO"]) > lm.word_logprob("FIVE", ["SIX", "TWO"]) + 1
    assert lm.word_logprob("</s>", ["<s>", "RUBOUT"]) > lm.word_logprob("</s>", ["<s>", "SIX"]) + 1
    # continuation counts: FOUR follows two words, SEVEN one; raw unigram counts would tie them (2 vs 1 ...)
    assert lm.word_logprob("FOUR", ["HELP"]) > lm.word_logprob("SEVEN", ["HELP"])
    assert lm.perplexity(CORPUS)[0] < lm.perplexity(["FOUR GO ZERO RUBOUT HELP"])[0]
    assert lm.perplexity(["GO XYZZY"])[1:] == (2, 1)  # GO + </s> scored, one OOV


def test_kneser_ney_by_hand():
    """A bigram small enough to smooth by hand: ``<s> A B </s>`` x2, ``<s> B </s>``, ``<s> A </s>``.
    Order 2 (raw counts 3, 2, 3, 1, 1; no count 4): one discount ``D = n1 / (n1 + 2 n2) = 2 / 4``. Order 1
    (continuation counts A 1, B 2, </s> 2): ``D = 1 / 5``, interpolated with the uniform 1/3."""
    lm = WordNgramLM.from_texts(["A B", "A B", "B", "A"], order=2)
    p1 = {"A": 0.8 / 5 + (0.2 * 3 / 5) / 3, "B": 1.8 / 5 + 0.04, "</s>": 1.8 / 5 + 0.04}
    assert p1 == pytest.approx({"A": 0.2, "B": 0.4, "</s>": 0.4})
    gamma_a = 0.5 * 2 / 3
    expected = {("B", "A"): 1.5 / 3 + gamma_a * 0.4, ("</s>", "A"): 0.5 / 3 + gamma_a * 0.4,
                ("A", "A"): gamma_a * 0.2, ("A", "<s>"): 2.5 / 4 + 0.5 * 2 / 4 * 0.2,
                ("B", "B"): 0.5 / 3 * 0.4}  # B: only </s> after it, 3 times
    for (w, h), p in expected.items():
        assert lm.word_logprob(w, [h]) == pytest.approx(math.log(p), abs=1e-12), (w, h)


@pytest.mark.parametrize("lookahead", ["sum", "max", "none"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_char_scores_add_up_to_word_scores(order, lookahead):
    """Whatever the look-ahead, the character scores of a sentence add up to its word-level score."""
    lm = WordNgramLM.from_texts(CORPUS, order=order, lookahead=lookahead, oov_penalty=-4.0, word_bonus=1.5)
    for text in CORPUS + ["ENTER SEVEN", "GO XYZ STOP", "SEV", "SIXT", "SIXTY SIX", "S"]:
        assert lm.sentence_logprob(text) == pytest.approx(lm.word_sentence_logprob(text), abs=1e-9)


def test_sum_lookahead_is_a_char_distribution(lm):
    """With ``lookahead="sum"`` the in-lexicon character scores are exact: at the start of a word the first
    characters + ``</s>`` sum to 1; inside a word the next characters + the space (word end) sum to 1."""
    lm.set_options(lookahead="sum", word_bonus=0.0)
    for prefix in ["", "S", "SI", "SIX", "SIXT", "ENTER ", "ENTER SEVENT", "GO GO ", "T"]:
        st = walk(lm, prefix)
        lp = lm.log_probs(st)
        _, node = st
        inside = [t for t in lm._children[node]] + ([TOK.encode(" ")[0]] if lm._terminal[node] else [])
        total = np.exp(lp[inside]).sum() + (np.exp(lp[-1]) if node == 0 else 0.0)
        assert total == pytest.approx(1.0, abs=1e-9), prefix
        assert lm.final(st) == pytest.approx(lp[-1]) and lm.score(st, 3)[0] == pytest.approx(lp[3])


def test_trie_oov_penalty(lm):
    space = TOK.encode(" ")[0]
    log_u = -math.log(len(lm.vocab) + 1)
    for la in ["sum", "max", "none"]:
        lm.set_options(lookahead=la, oov_penalty=-7.0, word_bonus=0.0)
        st = walk(lm, "ENTER GO")
        assert st[1] > 0
        # X leaves the tree after GO: penalty, the look-ahead credit of "GO" taken back, "GO" + X spelled
        credit = lm.sentence_logprob("ENTER GO") - lm.final(st) - lm.sentence_logprob("ENTER") + lm.final(
            walk(lm, "ENTER")) - lm.log_probs(walk(lm, "ENTER"))[space]
        x = TOK.encode("X")[0]
        assert lm.log_probs(st)[x] == pytest.approx(-7.0 - credit + 3 * log_u)
        oov = lm.next_state(st, x)
        assert oov[1] == -1  # off the tree
        np.testing.assert_allclose(lm.log_probs(oov)[1:-1], log_u)  # then spelled uniformly
        assert lm.next_state(oov, space) == ((lm.word_ids["ENTER"], lm.unk), 0)  # the OOV word enters as <unk>
        # a space after a prefix that is not a word, or an empty word, is OOV too
        assert lm.log_probs(walk(lm, "ENTER SEVE"))[space] == pytest.approx(
            -7.0 - (lm.sentence_logprob("ENTER SEVE") - lm.final(walk(lm, "ENTER SEVE"))
                    - lm.sentence_logprob("ENTER") + lm.final(walk(lm, "ENTER"))
                    - lm.log_probs(walk(lm, "ENTER"))[space]) + 5 * log_u)
        assert lm.log_probs(lm.initial_state())[space] == pytest.approx(-7.0 + log_u)
    # the penalty moves OOV sentences by exactly its change, in-vocabulary ones not at all
    lm.set_options(lookahead="sum", oov_penalty=-2.0)
    a_in, a_oov = lm.sentence_logprob("GO STOP"), lm.sentence_logprob("GX STOP")
    lm.set_options(oov_penalty=-5.0)
    assert lm.sentence_logprob("GO STOP") == pytest.approx(a_in)
    assert lm.sentence_logprob("GX STOP") == pytest.approx(a_oov - 3.0)
    assert lm.sentence_logprob("GX GX STOP") == pytest.approx(lm.sentence_logprob("GO GO STOP") - 4.0, abs=30)
    assert a_in > a_oov
    with pytest.raises(ValueError):
        lm.set_options(oov_penalty=1.0)  # a log-probability
    with pytest.raises(ValueError):
        lm.set_options(lookahead="best")
    with pytest.raises(ValueError):
        lm.score(lm.initial_state(), 0)  # the blank is not a character
    lm.set_options(oov_penalty=-10.0, lookahead="sum")


def test_arpa_roundtrip(lm, tmp_path):
    for name in ["lm.arpa", "lm.arpa.gz"]:
        lm2 = WordNgramLM.load(lm.save(tmp_path / name))
        assert lm2.words == lm.words and lm2.order == lm.order and not lm2.has_unk
        for h in histories(lm):
            np.testing.assert_allclose(np.log(lm2.word_probs(h)[1:lm.eos + 1]),
                                       np.log(lm.word_probs(h)[1:lm.eos + 1]), rtol=0, atol=1e-6)
        for prefix in ["", "SIXT", "ENTER SEVENT", "GO GX"]:
            np.testing.assert_allclose(lm2.log_probs(walk(lm2, prefix)), lm.log_probs(walk(lm, prefix)), atol=1e-6)
    head = (tmp_path / "lm.arpa").read_text().splitlines()[1:5]
    assert head[:2] == ["\\data\\", f"ngram 1={lm.n_words + 2}"] and head[3].startswith("ngram 3=")  # + <s>, </s>


def test_arpa_backoff_semantics_and_unk(tmp_path):
    """A hand-written backoff model: listed n-grams are taken as they are, the others back off."""
    arpa = """\\data\\
ngram 1=5
ngram 2=2

\\1-grams:
-99\t<s>\t-0.3
-0.5\tA\t-0.2
-0.6\tB
-0.7\t</s>
-1.5\t<unk>

\\2-grams:
-0.1\t<s> A
-0.2\tA B

\\end\\
"""
    (tmp_path / "tiny.arpa").write_text(arpa)
    lm = WordNgramLM.load(tmp_path / "tiny.arpa")
    assert lm.words == ["A", "B"] and lm.has_unk and lm.order == 2
    assert lm.word_logprob("A", ["<s>"]) == pytest.approx(-0.1 * math.log(10))
    assert lm.word_logprob("B", ["<s>"]) == pytest.approx(-0.9 * math.log(10))  # bow(<s>) P(B)
    assert lm.word_logprob("B", ["A"]) == pytest.approx(-0.2 * math.log(10))
    assert lm.word_logprob("</s>", ["A"]) == pytest.approx(-0.9 * math.log(10))  # bow(A) P(</s>)
    assert lm.word_logprob("A", ["B"]) == pytest.approx(-0.5 * math.log(10))  # B has no backoff weight: 1
    assert lm.word_logprob("ZZZ", ["B"]) == pytest.approx(-1.5 * math.log(10))  # unknown words are <unk>
    # with <unk> in the LM, an OOV word also pays log P(<unk> | h)
    lm.set_options(oov_penalty=-1.0)
    assert lm.sentence_logprob("C") == pytest.approx(
        -1.0 + lm.word_logprob("<unk>", ["<s>"]) + 2 * -math.log(len(lm.vocab) + 1) + lm.word_logprob("</s>", ["C"]))
    (tmp_path / "bad.arpa").write_text(arpa.replace("ngram 2=2", "ngram 2=3"))
    with pytest.raises(ValueError, match="declared"):
        WordNgramLM.load(tmp_path / "bad.arpa")
    (tmp_path / "none.arpa").write_text("hello\n")
    with pytest.raises(ValueError):
        WordNgramLM.load(tmp_path / "none.arpa")


# --- fusion ----------------------------------------------------------------------------------------
class _Scripted(torch.nn.Module):
    """A 'transducer' whose joiner ignores the label history: the encoder output of frame t *is* the token
    log-probabilities (blank + characters) of that frame, so the acoustic score of a hypothesis is known."""

    def __init__(self, vocab_size: int):
        super().__init__()
        v = vocab_size

        class Pred:
            def init_state(self, b, device=None):
                return torch.zeros(1, b, 1), torch.zeros(1, b, 1)

            def step(self, tok, state):
                return torch.zeros(tok.shape[0], v), state

        class Join:
            enc_proj = pred_proj = staticmethod(lambda x: x)

            def __call__(self, enc, pred, projected=True):
                return enc

        self.predictor, self.joiner = Pred(), Join()


def _frames(spec: list[dict[str, float]]) -> torch.Tensor:
    """One frame per dict: probability per character ('' = blank), the rest spread over the other tokens."""
    v = len(TOK.vocab) + 1
    out = torch.full((len(spec), v), 0.0)
    for t, probs in enumerate(spec):
        rest = (1.0 - sum(probs.values())) / (v - len(probs))
        row = torch.full((v,), rest)
        for c, p in probs.items():
            row[0 if c == "" else TOK.encode(c)[0]] = p
        out[t] = row.log()
    return out


def test_beam_search_with_word_lm_prefers_the_in_vocabulary_word():
    net = _Scripted(len(TOK.vocab) + 1)
    # "G" then "X" a bit likelier than "O" (acoustically "GX"), then blanks
    enc = _frames([{"G": 0.9}, {"": 0.9}, {"X": 0.5, "O": 0.4}, {"": 0.95}, {"": 0.95}])
    plain = TOK.decode(beam_search(net, enc, enc.shape[0], beam=4))
    assert plain == "GX"
    lm = WordNgramLM.from_texts(CORPUS, order=3)
    for la in ["sum", "max", "none"]:
        lm.set_options(lookahead=la)
        fused = TOK.decode(beam_search(net, enc, enc.shape[0], beam=4, lm=lm, lm_weight=0.5))
        assert fused == "GO", la
    # weight 0: the plain search
    assert TOK.decode(beam_search(net, enc, enc.shape[0], beam=4, lm=lm, lm_weight=0.0)) == plain


def test_word_bonus_keeps_a_short_word():
    """A word LM charges nats per word, so fusion may drop a short word; the word bonus pays it back."""
    net = _Scripted(len(TOK.vocab) + 1)
    enc = _frames([{"G": 0.9}, {"O": 0.9}, {" ": 0.6, "": 0.35}, {"G": 0.55, "": 0.4}, {"O": 0.55, "": 0.4},
                   {"": 0.95}])
    lm = WordNgramLM.from_texts(["GO"] * 20 + ["GO GO"], order=2)

    def words(**fusion):
        return TOK.decode(beam_search(net, enc, enc.shape[0], beam=4, **fusion)).split()

    assert words() == ["GO", "GO"]
    assert words(lm=lm, lm_weight=1.0) == ["GO"]
    lm.set_options(word_bonus=4.0)
    assert words(lm=lm, lm_weight=1.0) == ["GO", "GO"]


def test_transcribe_with_word_lm(net, an4_wavs):
    """Threaded through ``transcribe`` (the character vocabulary check passes); at a huge weight every word
    of the output is in the LM's vocabulary, at weight 0 the output is the plain beam search's."""
    tok = net.tokenizer  # lively_net swaps two characters: build the LM over its vocabulary
    lm = WordNgramLM.from_texts(["HELLO WORLD"] * 20 + ["WORLD"], order=3, vocab=tok.vocab)
    paths = [str(p) for p in an4_wavs[:3]]
    plain = net.transcribe(paths, beam_size=4)
    assert net.transcribe(paths, beam_size=4, lm=lm, lm_weight=0.0) == plain
    fused = net.transcribe(paths, beam_size=4, lm=lm, lm_weight=100.0, length_bonus=20.0)
    assert any(p != f for p, f in zip(plain, fused))
    for text in fused:
        assert text.split() and set(text.split()) <= {"HELLO", "WORLD"}, text
