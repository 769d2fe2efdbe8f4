"""Character n-gram LM (interpolated Kneser-Ney) and its shallow fusion in transducer beam search."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zoo.errors import ZooError
from zoo.models.decoding import beam_search
from zoo.models.lm import CharNgramLM, perplexity
from zoo.text import CharTokenizer

CORPUS = ["ENTER SIX TWO FOUR", "ERASE O T H F I FIVE ZERO", "RUBOUT", "GO", "STOP", "ENTER FIVE",
          "NO", "YES", "REPEAT", "HELP", "SIX SIX SEVEN", "TWENTY FOUR"]


@pytest.fixture(scope="module")
def lm():
    return CharNgramLM.from_texts(CORPUS, order=4)


def histories(lm):
    tok = CharTokenizer(lm.vocab)
    out = [lm.initial_state()]
    for prefix in ["E", "ENT", "SIX S", "ZZZQ", "'' X", "TWENTY FOUR"]:
        st = lm.initial_state()
        for t in tok.encode(prefix):
            st = lm.next_state(st, t)
        out.append(st)
    return out


@pytest.mark.parametrize("order", [1, 2, 4, 6])
def test_probabilities_sum_to_one(order):
    lm = CharNgramLM.from_texts(CORPUS, order=order)
    for st in histories(lm):
        lp = lm.log_probs(st)
        assert lp[0] == 0.0 and lp.shape == (len(lm.vocab) + 2,)  # blank column, chars, </s>
        assert abs(np.exp(lp[1:]).sum() - 1.0) < 1e-6
        assert np.isfinite(lp).all()  # every symbol keeps some mass
        # score / final agree with log_probs
        assert lm.score(st, 3)[0] == pytest.approx(lp[3]) and lm.final(st) == pytest.approx(lp[-1])


def test_prefers_seen_continuation(lm):
    tok = CharTokenizer(lm.vocab)
    st = lm.initial_state()
    for t in tok.encode("ENTER SI"):
        st = lm.next_state(st, t)
    lp = lm.log_probs(st)
    assert int(np.argmax(lp[1:])) + 1 == tok.encode("X")[0]
    assert lm.sentence_logprob("ENTER SIX TWO FOUR") > lm.sentence_logprob("ENTER SIX TWO FOUX") + 3
    assert lm.sentence_logprob("GO") > lm.sentence_logprob("OG")
    # </s> is likely only where sentences ended
    done, mid = lm.initial_state(), lm.initial_state()
    for t in tok.encode("RUBOUT"):
        done = lm.next_state(done, t)
    for t in tok.encode("RUBO"):
        mid = lm.next_state(mid, t)
    assert lm.final(done) > math.log(0.3) and lm.final(done) > lm.final(mid) + 0.5


def test_state_is_bounded_history_and_bad_ids_raise(lm):
    st = lm.initial_state()
    for t in [1, 2, 3, 4, 5, 6]:
        st = lm.next_state(st, t)
    assert st == (4, 5, 6)  # order - 1 symbols
    with pytest.raises(ValueError):
        lm.score(st, 0)  # the blank is not a character
    with pytest.raises(ValueError):
        lm.score(st, len(lm.vocab) + 1)


def test_save_load_roundtrip(lm, tmp_path):
    lm2 = CharNgramLM.load(lm.save(tmp_path / "lm.json"))
    assert lm2.order == lm.order and lm2.vocab == lm.vocab
    for st in histories(lm):
        np.testing.assert_allclose(lm2.log_probs(st), lm.log_probs(st), rtol=0, atol=1e-12)
    assert perplexity(lm2, CORPUS) == pytest.approx(perplexity(lm, CORPUS))
    assert perplexity(lm, CORPUS) < perplexity(lm, ["QZX JQK", "XXXX"])


# --- fusion ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def encs(net, wavs):
    with torch.no_grad():
        return [net.encode(w[None], torch.tensor([w.numel()])) for w in wavs[:4]]


@pytest.mark.parametrize("beam", [1, 3, 4])
def test_no_lm_is_unchanged(net, encs, beam):
    """Without an LM (or at weight 0) the search is the plain one. That the plain one still equals the search
    before fusion existed is checked on every released model by tests/models/test_reference_outputs.py
    (beam-4 transcripts stored before this change)."""
    lm = CharNgramLM.from_texts(CORPUS, order=3, vocab=net.tokenizer.vocab)
    outs = []
    for enc, lens in encs:
        ref = beam_search(net, enc[0], int(lens[0]), beam)
        outs.append(ref)
        assert beam_search(net, enc[0], int(lens[0]), beam, lm=None, lm_weight=0.0) == ref
        assert beam_search(net, enc[0], int(lens[0]), beam, lm=lm, lm_weight=0.0) == ref
        if beam > 1:
            assert net.decode(enc, lens, beam) == [ref]
            assert net.decode(enc, lens, beam, lm=None) == [ref]
    assert sum(map(len, outs)) > 10  # the net emits, so the comparison means something


def test_huge_lm_weight_forces_lm_sentence(net, encs, an4_wavs):
    sentence = "HELLO WORLD"
    tok = net.tokenizer  # lively_net swaps a letter with the space: build the LM over its vocabulary
    lm = CharNgramLM.from_texts([sentence] * 50, order=4, vocab=tok.vocab)
    target = tok.encode(sentence)
    for enc, lens in encs[:3]:
        plain = beam_search(net, enc[0], int(lens[0]), 4)
        fused = beam_search(net, enc[0], int(lens[0]), 4, lm=lm, lm_weight=100.0, length_bonus=20.0)
        assert plain != target
        assert fused == target
    # threaded through transcribe
    path = str(an4_wavs[0])
    assert net.transcribe(path, beam_size=4, lm=lm, lm_weight=100.0, length_bonus=20.0) == [tok.decode(target)]
    assert net.transcribe(path, beam_size=4, lm=None) == net.transcribe(path, beam_size=4)


def test_moderate_weight_moves_towards_lm(net, encs):
    """A strong LM weight gives an output the LM scores at least as well per symbol as the plain search."""
    lm = CharNgramLM.from_texts(CORPUS, order=4, vocab=net.tokenizer.vocab)
    enc, lens = encs[1]
    lps = []
    for w in (0.0, 1.0, 5.0):
        ids = beam_search(net, enc[0], int(lens[0]), 4, lm=lm if w else None, lm_weight=w)
        st, lp = lm.initial_state(), 0.0
        for t in ids:
            s, st = lm.score(st, t)
            lp += s
        lps.append((lp + lm.final(st)) / (len(ids) + 1))
    assert lps[2] >= lps[0]


def test_fusion_argument_checks(net, an4_wavs):
    path = str(an4_wavs[0])
    other = CharNgramLM.from_texts(CORPUS, order=3)  # the standard vocabulary; lively_net swapped two chars
    assert other.vocab != net.tokenizer.vocab
    with pytest.raises(ZooError):
        net.transcribe(path, beam_size=4, lm=other, lm_weight=0.5)
    with pytest.raises(ZooError):
        net.transcribe(path, beam_size=4, lm_weight=0.5)


class PrefixILM:
    """The internal LM as an external LM object (states = token prefixes; the predictor is rerun on each prefix):
    an independent route to the same scores as ``beam_search(ilm_weight=...)``."""

    def __init__(self, net):
        self.net = net

    def initial_state(self):
        return ()

    def next_state(self, state, token_id):
        return state + (int(token_id),)

    def final(self, state):
        return 0.0

    def log_probs(self, state):
        p = self.net.predictor
        st = p.init_state(1)
        out, st = p.step(torch.zeros(1, dtype=torch.long), st)
        for t in state:
            out, st = p.step(torch.tensor([t]), st)
        j = self.net.joiner
        logits = j(torch.zeros(1, j.enc_proj.in_features), out)[0]  # the joiner with a zero encoder frame
        return np.concatenate([[0.0], torch.log_softmax(logits[1:], -1).detach().numpy()])


def test_internal_lm_subtraction(net, encs):
    from zoo.models.decoding import internal_lm_log_probs

    ilm = PrefixILM(net)
    with torch.no_grad():
        out, _ = net.predictor.step(torch.tensor([0, 3]), net.predictor.init_state(2))
        lp = internal_lm_log_probs(net, net.joiner.pred_proj(out))
    assert lp.shape == (2, net.tokenizer.vocab_size - 1)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(2), atol=1e-5)
    assert np.allclose(lp[0].numpy(), ilm.log_probs(())[1:], atol=1e-5)
    changed = 0
    for enc, lens in encs:
        plain = beam_search(net, enc[0], int(lens[0]), 4)
        assert beam_search(net, enc[0], int(lens[0]), 4, ilm_weight=0.0) == plain
        sub = beam_search(net, enc[0], int(lens[0]), 4, ilm_weight=0.7)
        assert sub == beam_search(net, enc[0], int(lens[0]), 4, lm=ilm, lm_weight=-0.7)
        assert net.decode(enc, lens, 4, ilm_weight=0.7) == [sub]
        changed += sub != plain
    assert changed  # the subtraction moves some hypothesis, so the equalities above mean something


def test_decoding_settings_from_config_json(net, an4_wavs, tmp_path):
    """A model folder's config.json ``decoding`` block sets the length bonus and internal-LM weight of greedy
    decoding (and streaming: still identical to batch greedy) and of beam search, as a release chose them on dev;
    explicit arguments override them, unknown keys are refused."""
    from zoo import from_pretrained
    from zoo.models.base import model_config, save_pretrained

    paths = [str(p) for p in an4_wavs[:4]]
    folder = save_pretrained(net, tmp_path / "m", config=model_config(net, decoding={
        "greedy": {"ilm_weight": 0.9, "length_bonus": 1.0}, "beam": {"ilm_weight": 0.7, "length_bonus": 0.5},
        "chosen_on": "AN4 dev"}))
    m = from_pretrained(folder)
    assert m.decoding_defaults(1) == {"length_bonus": 1.0, "ilm_weight": 0.9}
    assert m.decoding_defaults(4) == {"length_bonus": 0.5, "ilm_weight": 0.7}
    beam = m.transcribe(paths, beam_size=4)
    assert beam == net.transcribe(paths, beam_size=4, ilm_weight=0.7, length_bonus=0.5)
    assert beam != net.transcribe(paths, beam_size=4)  # the settings change something here
    assert m.transcribe(paths, beam_size=4, ilm_weight=0.0, length_bonus=0.0) == net.transcribe(paths, beam_size=4)
    greedy = m.transcribe(paths)
    assert greedy == net.transcribe(paths, ilm_weight=0.9, length_bonus=1.0) != net.transcribe(paths)
    from zoo.audio import load_audio

    for p, text in zip(paths, greedy):  # streaming uses the greedy settings: streamed == batch
        assert m.stream_transcribe(load_audio(p, 16000)) == text
    import os

    os.environ["ZOO_DECODING"] = "plain"  # reproduces results made before the settings shipped
    try:
        assert m.decoding_defaults(1) == {} and m.transcribe(paths) == net.transcribe(paths)
    finally:
        del os.environ["ZOO_DECODING"]
    m.zoo_config["decoding"] = {"greedy": {"ilm": 0.1}}
    with pytest.raises(ZooError, match="unknown keys"):
        m.transcribe(paths)


def test_greedy_internal_lm_subtraction_is_the_argmax_of_the_corrected_scores(net, encs):
    """greedy_search with ilm_weight / length_bonus picks, at each step, the argmax of log p - w * log p_ILM + b
    over non-blank tokens vs log p(blank): checked against a one-utterance reference loop."""
    from zoo.models.decoding import greedy_search, init_greedy_state, internal_lm_log_probs

    def reference(enc, t_len, w, b):
        st, hyp = init_greedy_state(net, 1), []
        enc_p = net.joiner.enc_proj(enc)
        for t in range(t_len):
            for _ in range(5):
                lp = torch.log_softmax(net.joiner(enc_p[:, t], st.pred_proj, projected=True), -1)
                lp[:, 1:] += b - w * internal_lm_log_probs(net, st.pred_proj)
                tok = int(lp.argmax(-1))
                if tok == 0:
                    break
                out, st.pred_state = net.predictor.step(torch.tensor([tok]), st.pred_state)
                st.pred_proj = net.joiner.pred_proj(out)
                hyp.append(tok)
        return hyp

    changed = 0
    with torch.no_grad():
        for enc, lens in encs:
            plain = greedy_search(net, enc, lens).hyps[0]
            assert greedy_search(net, enc, lens, ilm_weight=0.0, length_bonus=0.0).hyps[0] == plain
            got = greedy_search(net, enc, lens, ilm_weight=0.8, length_bonus=0.5).hyps[0]
            assert got == reference(enc, int(lens[0]), 0.8, 0.5)
            changed += got != plain
    assert changed
