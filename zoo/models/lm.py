"""N-gram language models for shallow fusion in transducer beam search: ``CharNgramLM`` (characters) and
``WordNgramLM`` (words, scored on characters through a lexicon prefix tree; documented at the class).

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


class _CharScorer:
    """What the beam search calls on an LM (``score``, ``final``, ``initial_state``), with ``sentence_logprob``,
    from the subclass's ``_check``, ``log_probs`` and ``next_state``."""
    vocab: str

    def initial_state(self) -> tuple:
        raise NotImplementedError

    def _check(self, token_id: int) -> int:
        raise NotImplementedError

    def log_probs(self, state: tuple) -> np.ndarray:
        raise NotImplementedError

    def next_state(self, state: tuple, token_id: int) -> tuple:
        raise NotImplementedError

    def final(self, state: tuple) -> float:
        raise NotImplementedError

    def score(self, state: tuple, token_id: int) -> tuple[float, tuple]:
        """``(log score of the character token after state, new state)``."""
        t = self._check(token_id)
        return float(self.log_probs(state)[t]), self.next_state(state, t)

    def sentence_logprob(self, text: str) -> float:
        """The character-level natural-log total of a text (characters outside ``vocab`` dropped), ``</s>``
        included."""
        tok = CharTokenizer(self.vocab)
        st, total = self.initial_state(), 0.0
        for t in tok.encode(text):
            lp, st = self.score(st, t)
            total += lp
        return total + self.final(st)


class CharNgramLM(_CharScorer):
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
        eos = len(tok.vocab) + 1
        counts = kn_adjusted_counts(([BOS] + tok.encode(text) + [eos] for text in texts), order)
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

    def final(self, state: tuple) -> float:
        """``log P(</s> | state)``."""
        return float(self.log_probs(state)[self.eos])

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


# ==================================================================================================
# Word n-gram LM with a character-level interface (lexicon prefix tree + look-ahead)
# ==================================================================================================
WORD_BOS, WORD_EOS, WORD_UNK = "<s>", "</s>", "<unk>"
LOOKAHEADS = ("sum", "max", "none")


def kn_adjusted_counts(sequences: Iterable[list[int]], order: int) -> list[dict[tuple, dict[int, float]]]:
    """Kneser-Ney adjusted counts of every n-gram (n = 1..order) of id sequences that start with ``BOS`` and
    end with the end symbol: raw counts at the top order and for n-grams starting with ``<s>``, else the number
    of distinct left neighbours. Returns ``counts[n - 1][history][next id]``; ``<s>`` is never predicted."""
    raw: dict[tuple, int] = defaultdict(int)
    for seq in sequences:
        for i in range(1, len(seq)):
            for k in range(1, min(order, i + 1) + 1):
                raw[tuple(seq[i - k + 1:i + 1])] += 1
    left: dict[tuple, int] = defaultdict(int)
    for g in raw:
        if len(g) >= 2:
            left[g[1:]] += 1
    counts: list[dict[tuple, dict[int, float]]] = [defaultdict(dict) for _ in range(order)]
    for g, c in raw.items():
        adj = c if (len(g) == order or g[0] == BOS) else left.get(g, 0)
        if adj > 0:
            counts[len(g) - 1][g[:-1]][g[-1]] = float(adj)
    return counts


def _modified_kn_discounts(level: dict[tuple, dict[int, float]]) -> tuple[float, float, float]:
    """Chen & Goodman's three discounts (counts 1, 2, 3+) from the counts-of-counts of one order:
    ``Y = n1 / (n1 + 2 n2)``, ``D_c = c - (c + 1) Y n_{c+1} / n_c``. On a corpus too small for them to be
    valid (a zero count-of-count, or a discount outside ``(0, c)``) one discount ``Y`` (clamped) for all."""
    n = [0, 0, 0, 0, 0]
    for ws in level.values():
        for c in ws.values():
            if c <= 4:
                n[int(c)] += 1
    if n[1] > 0 and n[2] > 0:
        y = n[1] / (n[1] + 2 * n[2])
        if n[3] > 0 and n[4] > 0:
            ds = tuple(c - (c + 1) * y * n[c + 1] / n[c] for c in (1, 2, 3))
            if all(0.0 < d < c for c, d in zip((1, 2, 3), ds)):
                return ds  # type: ignore[return-value]
    else:
        y = 0.5
    d = min(max(y, 0.05), 0.95)
    return (d, d, d)


class WordNgramLM(_CharScorer):
    """A word n-gram LM (modified Kneser-Ney, or any ARPA backoff model) that scores *characters*.

    Word level. Symbols: ``<s>`` (history only), the vocabulary words (ids ``1 .. V``, sorted), ``</s>``
    (``V + 1``) and ``<unk>`` (``V + 2``; probability 0 unless a loaded ARPA file lists it; in histories it
    stands for an out-of-vocabulary word and simply backs off). :meth:`from_texts` estimates interpolated
    modified Kneser-Ney (Chen & Goodman 1998: three discounts per order from counts-of-counts, continuation
    counts below the top order, raw counts for n-grams that start with ``<s>``, the unigrams interpolated with
    the uniform distribution over words + ``</s>``), so every history has a proper distribution over the
    vocabulary + ``</s>``. It is stored in backoff (ARPA) form, which represents interpolated KN exactly:
    ``P(w | h) = p(h w)`` if ``h w`` is listed, else ``bow(h) P(w | h')`` (``bow`` = the interpolation weight
    ``gamma(h)``, 1 for an unlisted ``h``). :meth:`save` writes ARPA, :meth:`load` reads any ARPA file, so a
    user can bring an LM estimated elsewhere (SRILM, KenLM's ``lmplz``).

    Why written here: ``kenlm`` (PyPI) is a query library (estimation is its C++ ``lmplz`` binary, which needs
    a build and is not installable offline) and gives no incremental character-level state; ``nltk.lm`` is not a
    dependency, has no ARPA input/output, scores one word at a time in pure Python and its Kneser-Ney has had a
    run of correctness bugs (unseen contexts, OOV words, the unigram level: nltk issues 2332, 2599, 3211).
    Counting a few thousand sentences and backing off over a ~2k-word vocabulary is a page of numpy.

    Character level (the API of :class:`CharNgramLM` that :func:`zoo.models.decoding.beam_search` fuses:
    ``initial_state``, ``log_probs``, ``next_state``, ``score``, ``final``; ``vocab`` is the *character*
    vocabulary of the tokenizer, which must contain the space). A state is ``(history, node)``: the last
    ``order - 1`` word ids and a node of a prefix tree (trie) over the vocabulary's spellings (``-1``: the
    current word has left the tree). Characters are scored with lexicon look-ahead ``LA(node)`` (``lookahead``):

    * ``"sum"`` (default; as ESPnet's look-ahead word LM, Hori et al. 2018): ``LA(node)`` = the probability
      mass of the words under ``node`` given the history, so ``P(c | node) = LA(child) / LA(node)`` and a space
      after a complete word ``w`` scores ``P(w | h) / LA(node)``: within the lexicon this is an exact character
      LM (chars + ``</s>`` sum to 1 at every state).
    * ``"max"`` (the classic decoder LM look-ahead): ``LA(node)`` = the best word probability under ``node``.
    * ``"none"``: characters inside the tree score 0, the whole ``log P(w | h)`` comes at the word's end.

    ``LA(root) = 1`` in every mode, so a word's character scores add up to ``log P(w | h)`` whatever the mode.
    A character that leaves the tree (or a space / end of sentence where the prefix is not a word, or an empty
    word) starts an out-of-vocabulary word: it scores ``oov_penalty`` (a log-probability, <= 0; plus
    ``log P(<unk> | h)`` when the LM has ``<unk>``), takes back the look-ahead credit given so far and spells the
    word with a uniform model over characters + end of word (``log u = -log(len(vocab) + 1)`` per character
    and for the end); so an OOV word of ``k`` characters costs ``oov_penalty + (k + 1) log u`` in total, again
    whatever the mode, and longer garbage costs more (a length bonus cannot pay for it for free).
    ``word_bonus`` (default 0) is added for every completed word (at its space or at the end of the sentence),
    the word insertion bonus of word-LM decoders: a word LM charges several nats per word, which makes the
    fused search drop short words; like every LM score it is scaled by the fusion's ``lm_weight``.
    """

    def __init__(self, words: Iterable[str], order: int, probs: list[dict[tuple, dict[int, float]]],
                 bows: dict[tuple, float], vocab: str | None = None, oov_penalty: float = -10.0,
                 lookahead: str = "sum", word_bonus: float = 0.0, has_unk: bool = False):
        self.words = list(words)
        if self.words != sorted(set(self.words)):
            raise ValueError("words must be sorted and distinct")
        if order < 1 or len(probs) != order:
            raise ValueError(f"order must be >= 1 and match the probability tables (got {order}, {len(probs)})")
        self.order = order
        self.vocab = CharTokenizer(vocab).vocab if vocab is not None else CharTokenizer().vocab
        if " " not in self.vocab:
            raise ValueError("the character vocabulary needs the space (the word separator)")
        self.n_words = len(self.words)
        self.eos, self.unk = self.n_words + 1, self.n_words + 2
        self.word_ids = {w: i + 1 for i, w in enumerate(self.words)}
        self.has_unk = has_unk
        self._probs = probs
        self._bows = dict(bows)
        self._tables = [{h: (np.fromiter(ws.keys(), int, len(ws)), np.fromiter(ws.values(), float, len(ws)))
                         for h, ws in level.items()} for level in probs]
        uni = np.zeros(self.n_words + 3)
        if () in self._tables[0]:
            ids, ps = self._tables[0][()]
            uni[ids] = ps
        self._unigram = uni
        self._build_trie()
        self._log_u = -math.log(len(self.vocab) + 1)
        self.oov_penalty = 0.0
        self.lookahead = "sum"
        self.word_bonus = 0.0
        self._caches: dict = {}
        self.set_options(oov_penalty=oov_penalty, lookahead=lookahead, word_bonus=word_bonus)

    # --- options ---------------------------------------------------------------------------------------
    def set_options(self, oov_penalty: float | None = None, lookahead: str | None = None,
                    word_bonus: float | None = None) -> "WordNgramLM":
        """Change the character-level scoring (clears the state caches); returns ``self``."""
        if oov_penalty is not None:
            if not oov_penalty <= 0.0:
                raise ValueError(f"oov_penalty is a log-probability, <= 0 (got {oov_penalty})")
            self.oov_penalty = float(oov_penalty)
        if lookahead is not None:
            if lookahead not in LOOKAHEADS:
                raise ValueError(f"lookahead must be one of {LOOKAHEADS} (got {lookahead!r})")
            self.lookahead = lookahead
        if word_bonus is not None:
            if not math.isfinite(word_bonus):
                raise ValueError(f"word_bonus must be finite (got {word_bonus})")
            self.word_bonus = float(word_bonus)
        self._caches = {"words": {}, "la": {}, "chars": {}}
        return self

    # --- building --------------------------------------------------------------------------------------
    @classmethod
    def from_texts(cls, texts: Iterable[str], order: int = 3, vocab: str | None = None,
                   **options) -> "WordNgramLM":
        """Estimate an interpolated modified Kneser-Ney word ``order``-gram from texts (already normalised
        like the model's references; characters outside the character ``vocab`` are dropped, words split on
        whitespace). The vocabulary is the set of training words. ``options``: ``oov_penalty``, ``lookahead``,
        ``word_bonus``."""
        if order < 1:
            raise ValueError(f"order must be >= 1 (got {order})")
        tok = CharTokenizer(vocab) if vocab is not None else CharTokenizer()
        if tok.specials:
            raise ValueError("WordNgramLM covers plain character vocabularies only")
        sents = [tok.decode(tok.encode(t)).split() for t in texts]
        words = sorted({w for s in sents for w in s})
        ids = {w: i + 1 for i, w in enumerate(words)}
        eos = len(words) + 1
        counts = kn_adjusted_counts(([BOS] + [ids[w] for w in s] + [eos] for s in sents), order)
        disc = [_modified_kn_discounts(level) for level in counts]

        gammas: dict[tuple, tuple[float, float]] = {}  # history -> (total count, interpolation weight)
        for k, level in enumerate(counts):
            d1, d2, d3 = disc[k]
            for h, ws in level.items():
                total = sum(ws.values())
                mass = sum(d1 if c == 1 else d2 if c == 2 else d3 for c in ws.values())
                gammas[h] = (total, mass / total)
        uniform = 1.0 / (len(words) + 1)
        memo: dict[tuple, float] = {}

        def prob(h: tuple, w: int) -> float:  # interpolated P(w | h), h of any length < order
            key = h + (w,)
            if key in memo:
                return memo[key]
            lower = prob(h[1:], w) if h else uniform
            ws = counts[len(h)].get(h)
            if ws is None:
                p = lower
            else:
                total, gamma = gammas[h]
                c = ws.get(w, 0.0)
                d1, d2, d3 = disc[len(h)]
                d = 0.0 if c == 0 else d1 if c == 1 else d2 if c == 2 else d3
                p = (c - d) / total + gamma * lower
            memo[key] = p
            return p

        probs: list[dict[tuple, dict[int, float]]] = [{} for _ in range(order)]
        probs[0][()] = {w: prob((), w) for w in range(1, eos + 1)}  # every word + </s> at order 1
        for k in range(1, order):
            for h, ws in counts[k].items():
                probs[k][h] = {w: prob(h, w) for w in ws}
        bows = {h: g for h, (_, g) in gammas.items() if h}  # the empty history's weight is folded in
        return cls(words, order, probs, bows, vocab=tok.vocab, **options)

    # --- word level ------------------------------------------------------------------------------------
    def word_probs(self, history: tuple) -> np.ndarray:
        """P(. | history) over symbol ids (index 0 unused = 0; ``1..V`` words, ``V+1`` ``</s>``, ``V+2``
        ``<unk>``); ``history``: word ids, ``0`` = ``<s>``. Cached."""
        h = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        cache = self._caches["words"]
        p = cache.get(h)
        if p is None:
            p = self._unigram.copy()
            for k in range(2, min(self.order, len(h) + 1) + 1):
                hk = h[len(h) - (k - 1):]
                bow = self._bows.get(hk)
                if bow is not None:
                    p = p * bow
                tab = self._tables[k - 1].get(hk)
                if tab is not None:
                    p[tab[0]] = tab[1]
            if len(cache) > 50_000:
                cache.clear()
            cache[h] = p
        return p

    def word_logprob(self, word: str, history: Iterable[str] = ()) -> float:
        """Natural-log P(word | history words) (``</s>`` allowed; a word outside the vocabulary: ``<unk>``)."""
        return math.log(max(float(self.word_probs(self._ids(history))[self._id(word)]), 1e-300))

    def _id(self, word: str) -> int:
        return self.eos if word == WORD_EOS else BOS if word == WORD_BOS else self.word_ids.get(word, self.unk)

    def _ids(self, words: Iterable[str]) -> tuple:
        return tuple(self._id(w) for w in words)

    # --- the prefix tree -------------------------------------------------------------------------------
    def _build_trie(self) -> None:
        """Nodes over the spellings (in the character vocabulary) of the words; node 0 is the root. Words are
        sorted, so the words under a node are the ids ``lo + 1 .. hi`` (``_in_trie`` masks words that are not
        spellable)."""
        char_ids = {c: i + 1 for i, c in enumerate(self.vocab)}
        space = char_ids[" "]
        self.space = space
        children: list[dict[int, int]] = [{}]
        terminal, lo, hi, depth = [0], [0], [0], [0]
        in_trie = np.zeros(self.n_words + 3, dtype=bool)
        for wid, w in enumerate(self.words, start=1):
            if not w or any(c not in char_ids or char_ids[c] == space for c in w):
                continue  # not spellable with this tokenizer: kept in the LM, never produced
            in_trie[wid] = True
            node = 0
            path = [0]
            for c in w:
                t = char_ids[c]
                nxt = children[node].get(t)
                if nxt is None:
                    nxt = len(children)
                    children.append({})
                    terminal.append(0)
                    lo.append(wid - 1)
                    hi.append(wid)
                    depth.append(depth[node] + 1)
                    children[node][t] = nxt
                node = nxt
                path.append(node)
            terminal[node] = wid
            for n in path:
                lo[n], hi[n] = min(lo[n], wid - 1), max(hi[n], wid)
        self._children, self._terminal, self._depth = children, terminal, depth
        self._lo, self._hi, self._in_trie = lo, hi, in_trie
        self.n_lexicon = int(in_trie.sum())

    def _la_table(self, h: tuple):
        """Per history: cumulative sums (``"sum"``) or the masked probability vector (``"max"``)."""
        cache = self._caches["la"]
        t = cache.get(h)
        if t is None:
            p = np.where(self._in_trie, self.word_probs(h), 0.0)
            t = np.concatenate([[0.0], np.cumsum(p[1:self.n_words + 1])]) if self.lookahead == "sum" else p
            if len(cache) > 50_000:
                cache.clear()
            cache[h] = t
        return t

    def _log_la(self, h: tuple, node: int) -> float:
        if node == 0 or self.lookahead == "none":
            return 0.0
        t = self._la_table(h)
        lo, hi = self._lo[node], self._hi[node]
        v = t[hi] - t[lo] if self.lookahead == "sum" else float(t[lo + 1:hi + 1].max())
        return math.log(max(v, 1e-300))

    # --- character level (the beam-search API) ---------------------------------------------------------
    def initial_state(self) -> tuple:
        """``(history, node)``: the ``<s>`` history at the root of the tree."""
        return ((BOS,), 0)

    def _check(self, token_id: int) -> int:
        t = int(token_id)
        if not 1 <= t <= len(self.vocab):
            raise ValueError(f"token id {token_id} is not a character of this LM (1..{len(self.vocab)})")
        return t

    def _push(self, h: tuple, wid: int) -> tuple:
        return (h + (wid,))[-(self.order - 1):] if self.order > 1 else ()

    def _oov_start(self, h: tuple, node: int) -> float:
        """Score of the character that starts an OOV word at ``node`` (that character spelled too): the
        penalty, ``<unk>``'s probability if any, the look-ahead credit taken back, the prefix spelled."""
        unk = math.log(max(float(self.word_probs(h)[self.unk]), 1e-300)) if self.has_unk else 0.0
        return self.oov_penalty + unk - self._log_la(h, node) + (self._depth[node] + 1) * self._log_u

    def next_state(self, state: tuple, token_id: int) -> tuple:
        h, node = state
        t = self._check(token_id)
        if t == self.space:
            wid = self._terminal[node] if node > 0 else 0
            return (self._push(h, wid if wid else self.unk), 0)
        if node < 0:
            return state
        child = self._children[node].get(t)
        return (h, child if child is not None else -1)

    def log_probs(self, state: tuple) -> np.ndarray:
        """Natural-log scores after ``state`` indexed by token id (0: blank, = 0.0; ``1..len(vocab)``: the
        characters; last: ``</s>``, as :meth:`final`). Cached per state."""
        cache = self._caches["chars"]
        out = cache.get(state)
        if out is not None:
            return out
        h, node = state
        out = np.empty(len(self.vocab) + 2)
        if node < 0:  # inside an OOV word: spelled uniformly, the space ends it
            out[:] = self._log_u
            out[self.space] += self.word_bonus
        else:
            base = self._log_la(h, node)
            out[:] = self._oov_start(h, node)
            for t, child in self._children[node].items():
                out[t] = self._log_la(h, child) - base
            wid = self._terminal[node] if node > 0 else 0
            if wid:
                out[self.space] = math.log(max(float(self.word_probs(h)[wid]), 1e-300)) - base
            out[self.space] += self.word_bonus
        out[0] = 0.0
        out[-1] = self._final(h, node)
        if len(cache) > 200_000:
            cache.clear()
        cache[state] = out
        return out

    def _final(self, h: tuple, node: int) -> float:
        if node == 0:
            return math.log(max(float(self.word_probs(h)[self.eos]), 1e-300))
        wid = self._terminal[node] if node > 0 else 0
        if wid:
            end = math.log(max(float(self.word_probs(h)[wid]), 1e-300)) - self._log_la(h, node)
        else:
            end = self._log_u if node < 0 else self._oov_start(h, node)
        nh = self._push(h, wid if wid else self.unk)
        return end + self.word_bonus + math.log(max(float(self.word_probs(nh)[self.eos]), 1e-300))

    def final(self, state: tuple) -> float:
        """Log score of ending the sentence after ``state`` (the current word completed, then ``</s>``)."""
        return float(self.log_probs(state)[-1])

    def word_sentence_logprob(self, text: str) -> float:
        """The same total computed word by word (what the character scores must add up to): ``log P(w | h)``
        per vocabulary word, ``oov_penalty (+ log P(<unk> | h)) + (len + 1) log u`` per other word,
        ``word_bonus`` per word, then ``</s>``."""
        h: tuple = (BOS,)
        total = 0.0
        for w in CharTokenizer(self.vocab).decode(CharTokenizer(self.vocab).encode(text)).split():
            wid = self.word_ids.get(w, 0)
            p = self.word_probs(h)
            if wid and self._in_trie[wid]:
                total += math.log(max(float(p[wid]), 1e-300))
            else:
                unk = math.log(max(float(p[self.unk]), 1e-300)) if self.has_unk else 0.0
                total += self.oov_penalty + unk + (len(w) + 1) * self._log_u
                wid = self.unk
            total += self.word_bonus
            h = self._push(h, wid)
        return total + math.log(max(float(self.word_probs(h)[self.eos]), 1e-300))

    def perplexity(self, texts: Iterable[str]) -> tuple[float, int, int]:
        """Word-level ``(perplexity, words + </s> scored, OOV words)``: OOV words are not scored (they enter
        the history as ``<unk>``), as SRILM's ``ppl`` does."""
        total, n, oov = 0.0, 0, 0
        for text in texts:
            h: tuple = (BOS,)
            for w in list(text.split()) + [WORD_EOS]:
                wid = self._id(w)
                if wid == self.unk:
                    oov += 1
                else:
                    total += math.log(max(float(self.word_probs(h)[wid]), 1e-300))
                    n += 1
                h = self._push(h, wid)
        return math.exp(-total / max(n, 1)), n, oov

    # --- ARPA ------------------------------------------------------------------------------------------
    def _name(self, i: int) -> str:
        return WORD_BOS if i == BOS else WORD_EOS if i == self.eos else WORD_UNK if i == self.unk \
            else self.words[i - 1]

    def to_arpa(self) -> str:
        """The LM as ARPA text (log10 probabilities and backoff weights)."""
        def lg(x: float) -> str:
            return "-99" if x <= 0 else f"{math.log10(x):.8g}"

        sections = []
        for k in range(1, self.order + 1):
            lines = []
            entries = sorted((h + (w,), p) for h, ws in self._probs[k - 1].items() for w, p in ws.items())
            if k == 1:
                entries = [((BOS,), 0.0)] + entries  # <s>: never predicted, carries a backoff weight
            for g, p in entries:
                row = f"{lg(p)}\t{' '.join(self._name(i) for i in g)}"
                if k < self.order and g in self._bows:
                    row += f"\t{lg(self._bows[g])}"
                lines.append(row)
            sections.append(lines)
        head = ["", "\\data\\"] + [f"ngram {k}={len(s)}" for k, s in enumerate(sections, 1)]
        body = []
        for k, s in enumerate(sections, 1):
            body += ["", f"\\{k}-grams:"] + s
        return "\n".join(head + body + ["", "\\end\\", ""])

    def save(self, path: str | Path) -> Path:
        """Write ARPA (gzip-compressed when the name ends in ``.gz``), atomically."""
        from zoo.io import atomic_write_bytes
        data = self.to_arpa().encode("utf-8")
        if str(path).endswith(".gz"):
            import gzip
            data = gzip.compress(data, mtime=0)
        return atomic_write_bytes(path, data)

    @classmethod
    def load(cls, path: str | Path, vocab: str | None = None, **options) -> "WordNgramLM":
        """Read an ARPA backoff LM (``.gz`` too). ``vocab``: the character vocabulary of the ASR model
        (default: the standard one); words not spellable with it stay in the LM but are never produced."""
        raw = Path(path).read_bytes()
        if str(path).endswith(".gz"):
            import gzip
            raw = gzip.decompress(raw)
        return cls.from_arpa(raw.decode("utf-8"), vocab=vocab, source=str(path), **options)

    @classmethod
    def from_arpa(cls, text: str, vocab: str | None = None, source: str = "ARPA text",
                  **options) -> "WordNgramLM":
        grams: list[list[tuple[tuple[str, ...], float, float | None]]] = []
        declared: dict[int, int] = {}
        section = None
        for lineno, line in enumerate(text.splitlines(), 1):
            s = line.strip()
            if not s:
                continue
            if s == "\\data\\":
                section = 0
            elif s == "\\end\\":
                break
            elif s.startswith("\\") and s.endswith("-grams:"):
                section = int(s[1:-7])
                if section != len(grams) + 1:
                    raise ValueError(f"{source}:{lineno}: \\{section}-grams: out of order")
                grams.append([])
            elif section == 0 and s.startswith("ngram "):
                order_s, count_s = s[6:].split("=")
                declared[int(order_s)] = int(count_s)
            elif section:
                f = s.split()
                if len(f) not in (section + 1, section + 2):
                    raise ValueError(f"{source}:{lineno}: expected {section} words, a log10 probability "
                                     f"and an optional backoff weight")
                grams[-1].append((tuple(f[1:section + 1]), float(f[0]),
                                  float(f[section + 1]) if len(f) == section + 2 else None))
        if not grams or section is None:
            raise ValueError(f"{source} is not an ARPA file (no \\data\\ or \\1-grams:)")
        for k, n in declared.items():
            if k > len(grams) or len(grams[k - 1]) != n:
                raise ValueError(f"{source}: ngram {k}={n} declared, "
                                 f"{len(grams[k - 1]) if k <= len(grams) else 0} found")
        specials = {WORD_BOS, WORD_EOS, WORD_UNK}
        words = sorted({g[0] for g, _, _ in grams[0] if g[0] not in specials})
        has_unk = any(g[0] == WORD_UNK for g, _, _ in grams[0])
        ids = {w: i + 1 for i, w in enumerate(words)}
        ids.update({WORD_BOS: BOS, WORD_EOS: len(words) + 1, WORD_UNK: len(words) + 2})
        order = len(grams)
        probs: list[dict[tuple, dict[int, float]]] = [{} for _ in range(order)]
        bows: dict[tuple, float] = {}
        for k, entries in enumerate(grams, 1):
            for g, lp, bw in entries:
                try:
                    gi = tuple(ids[w] for w in g)
                except KeyError as e:
                    raise ValueError(f"{source}: {' '.join(g)!r} has a word that is not a unigram: {e}") from None
                if bw is not None and k < order:
                    bows[gi] = 10.0 ** bw
                if gi[-1] != BOS:  # <s> is never predicted
                    probs[k - 1].setdefault(gi[:-1], {})[gi[-1]] = 10.0 ** lp if lp > -99 else 0.0
        return cls(words, order, probs, bows, vocab=vocab, has_unk=has_unk, **options)

    def __repr__(self) -> str:
        n = sum(len(ws) for level in self._probs for ws in level.values())
        return (f"WordNgramLM(order={self.order}, {self.n_words} words, {n} n-grams, "
                f"lookahead={self.lookahead!r}, oov_penalty={self.oov_penalty:g}, word_bonus={self.word_bonus:g})")
