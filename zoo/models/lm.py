"""A character n-gram language model for shallow fusion in transducer beam search.

``CharNgramLM`` predicts the tokenizer's characters (token ids ``1 .. len(vocab)``, as in
:class:`zoo.text.CharTokenizer`) plus an end-of-sentence symbol ``</s>``, from the previous ``order - 1``
symbols (the history starts with ``<s>``, which is never predicted). Smoothing is interpolated Kneser-Ney with
one absolute discount per order, ``D = n1 / (n1 + 2 n2)`` (Ney, Essen & Kneser 1994; Chen & Goodman 1998):

    P_k(w | h) = max(c_k(h w) - D_k, 0) / c_k(h .) + D_k * N1+(h .) / c_k(h .) * P_{k-1}(w | h')

where ``h'`` drops the oldest symbol of ``h``, ``c_k`` is the raw count at the highest order and the
continuation count (number of distinct left neighbours) below it (raw counts for n-grams that start with
``<s>``, which have no left neighbour), and an unseen history (``c_k(h .) = 0``) hands its whole mass to
``P_{k-1}``. The recursion ends in the uniform distribution over vocabulary + ``</s>``, so every history gets
a proper distribution over exactly those symbols (``sum = 1``), and no symbol gets probability 0.

Why not kenlm: it is not installable here (no network for its C++ build / ARPA tools), and its Python API scores
whole words-as-strings, with no cheap char-level incremental ``state -> (log p, state)`` call over our token
ids; a char LM over a few thousand AN4 sentences is small enough to build and query in pure Python.

Contract:
    * ``CharNgramLM.from_texts(texts, order=6, vocab=...)``: texts already normalised like the model's
      references; characters outside ``vocab`` are dropped (as the tokenizer does).
    * ``initial_state()`` -> an opaque hashable state (the ``<s>`` history).
    * ``score(state, token_id) -> (log_prob, new_state)``: natural-log probability of the character with that
      token id after ``state``. Token ids outside ``1 .. len(vocab)`` raise ``ValueError``.
    * ``final(state)`` -> natural-log probability of ``</s>`` after ``state``.
    * ``log_probs(state)`` -> numpy array (len(vocab) + 2,): index 0 (the blank) = 0.0, index ``i`` = log P of
      token id ``i``, index ``len(vocab) + 1`` = log P(``</s>``); cached per state.
    * ``save(path)`` / ``load(path)``: JSON with the vocabulary, order, discounts and counts.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import numpy as np

from zoo.text import CharTokenizer

BOS = 0  # the <s> symbol in histories (the blank id, never a character)
FORMAT = "zoo-char-ngram-lm/1"


class CharNgramLM:
    """Interpolated Kneser-Ney character n-gram LM over a tokenizer's characters + ``</s>`` (see module doc)."""

    def __init__(self, vocab: str, order: int, counts: list[dict[tuple, dict[int, float]]],
                 discounts: list[float]):
        if order < 1:
            raise ValueError(f"order must be >= 1 (got {order})")
        self.vocab = vocab
        self.order = order
        self.eos = len(vocab) + 1
        self.size = len(vocab) + 1  # predicted symbols: characters + </s>
        # counts[k-1][history (k-1 symbols)][w] = (adjusted) count of the k-gram history + w
        self.counts = counts
        self.discounts = discounts
        self._totals = [{h: (sum(ws.values()), len(ws)) for h, ws in level.items()} for level in counts]
        self._cache: dict[tuple, np.ndarray] = {}

    # --- building ------------------------------------------------------------------------------------
    @classmethod
    def from_texts(cls, texts: Iterable[str], order: int = 6, vocab: str | None = None) -> "CharNgramLM":
        """Count ``order``-grams of the texts (each text: ``<s>`` + its characters + ``</s>``) and smooth."""
        tok = CharTokenizer(vocab) if vocab is not None else CharTokenizer()
        if tok.specials:
            raise ValueError("CharNgramLM covers plain character vocabularies only")
        if order < 1:
            raise ValueError(f"order must be >= 1 (got {order})")
        raw: dict[tuple, int] = defaultdict(int)  # all n-grams of length 1..order
        for text in texts:
            seq = [BOS] + tok.encode(text) + [len(tok.vocab) + 1]
            for i in range(1, len(seq)):
                for k in range(1, order + 1):
                    if i - k + 1 < 0:
                        break
                    raw[tuple(seq[i - k + 1:i + 1])] += 1
        # adjusted counts: raw at the top order and for n-grams starting with <s>; else distinct left neighbours
        left: dict[tuple, int] = defaultdict(int)
        for g in raw:
            if len(g) >= 2:
                left[g[1:]] += 1
        counts: list[dict[tuple, dict[int, float]]] = [defaultdict(dict) for _ in range(order)]
        for g, c in raw.items():
            k = len(g)
            if g[0] == BOS and k == 1:
                continue  # <s> is never predicted
            adj = c if (k == order or g[0] == BOS) else left.get(g, 0)
            if adj > 0:
                counts[k - 1][g[:-1]][g[-1]] = float(adj)
        discounts = []
        for level in counts:
            n1 = sum(1 for ws in level.values() for c in ws.values() if c == 1)
            n2 = sum(1 for ws in level.values() for c in ws.values() if c == 2)
            d = n1 / (n1 + 2 * n2) if n1 > 0 and n2 > 0 else 0.5
            discounts.append(min(max(d, 0.05), 0.95))
        return cls(tok.vocab, order, [dict(level) for level in counts], discounts)

    # --- scoring -------------------------------------------------------------------------------------
    def initial_state(self) -> tuple:
        """The ``<s>`` history."""
        return (BOS,)

    def _check(self, token_id: int) -> int:
        t = int(token_id)
        if not 1 <= t <= len(self.vocab):
            raise ValueError(f"token id {token_id} is not a character of this LM (1..{len(self.vocab)})")
        return t

    def next_state(self, state: tuple, token_id: int) -> tuple:
        """The history after ``token_id`` (the last ``order - 1`` symbols)."""
        return (tuple(state) + (self._check(token_id),))[max(0, len(state) + 1 - (self.order - 1)):] \
            if self.order > 1 else ()

    def _probs(self, state: tuple) -> np.ndarray:
        """P(. | state) over symbol ids 1 .. len(vocab) + 1 (index 0 unused, = 0)."""
        h = tuple(state)[-(self.order - 1):] if self.order > 1 else ()
        p = np.zeros(self.size + 1)
        p[1:] = 1.0 / self.size
        for k in range(1, self.order + 1):  # lowest order first
            if k - 1 > len(h):
                break
            hk = h[len(h) - (k - 1):] if k > 1 else ()
            tot = self._totals[k - 1].get(hk)
            if tot is None:
                continue  # unseen history: all of its mass goes to the lower order
            total, types = tot
            d = self.discounts[k - 1]
            lower = p
            p = lower * (d * types / total)
            for w, c in self.counts[k - 1][hk].items():
                p[w] += max(c - d, 0.0) / total
        return p

    def log_probs(self, state: tuple) -> np.ndarray:
        """Natural-log probabilities after ``state``, indexed by token id (0: blank, = 0.0; last: ``</s>``)."""
        key = tuple(state)
        out = self._cache.get(key)
        if out is None:
            p = self._probs(key)
            out = np.log(np.maximum(p, 1e-300))
            out[0] = 0.0
            if len(self._cache) > 200_000:
                self._cache.clear()
            self._cache[key] = out
        return out

    def score(self, state: tuple, token_id: int) -> tuple[float, tuple]:
        """``(log P(token | state), new state)``."""
        t = self._check(token_id)
        return float(self.log_probs(state)[t]), self.next_state(state, t)

    def final(self, state: tuple) -> float:
        """``log P(</s> | state)``."""
        return float(self.log_probs(state)[self.eos])

    def sentence_logprob(self, text: str) -> float:
        """Total natural-log probability of a text (characters outside the vocabulary dropped) incl. ``</s>``."""
        tok = CharTokenizer(self.vocab)
        st, total = self.initial_state(), 0.0
        for t in tok.encode(text):
            lp, st = self.score(st, t)
            total += lp
        return total + self.final(st)

    # --- persistence ---------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the LM as JSON (histories as space-separated symbol ids)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"format": FORMAT, "vocab": self.vocab, "order": self.order, "discounts": self.discounts,
                "counts": [{" ".join(map(str, h)): {str(w): c for w, c in ws.items()} for h, ws in level.items()}
                           for level in self.counts]}
        path.write_text(json.dumps(data, separators=(",", ":")))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "CharNgramLM":
        data = json.loads(Path(path).read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} file")
        counts = [{tuple(int(x) for x in h.split()): {int(w): float(c) for w, c in ws.items()}
                   for h, ws in level.items()} for level in data["counts"]]
        return cls(data["vocab"], int(data["order"]), counts, [float(d) for d in data["discounts"]])

    def __repr__(self) -> str:
        n = sum(len(ws) for level in self.counts for ws in level.values())
        return f"CharNgramLM(order={self.order}, vocab={len(self.vocab)} chars, {n} n-grams)"


def perplexity(lm: CharNgramLM, texts: Iterable[str]) -> float:
    """Per-symbol (characters + ``</s>``) perplexity of ``texts``."""
    tok = CharTokenizer(lm.vocab)
    total, n = 0.0, 0
    for text in texts:
        total += lm.sentence_logprob(text)
        n += len(tok.encode(text)) + 1
    return math.exp(-total / max(n, 1))
