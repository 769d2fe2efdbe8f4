"""Text normalisers (named, recorded in config.json and cards) and tokenizers that travel with a model."""
from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Callable

_AN4_MARKUP = re.compile(r"</?s>|\([^)]*\)\s*$")
_NON_WORD = re.compile(r"[^A-Z0-9' ]+")
_SPACES = re.compile(r"\s+")


NORMALIZERS: dict[str, Callable[[str], str]] = {}


def register_normalizer(name: str):
    """Function decorator: make a text normaliser selectable by ``name`` (configs, config.json, ``zoo audit``)."""
    def deco(fn: Callable[[str], str]):
        NORMALIZERS[name] = fn
        return fn
    return deco


@register_normalizer("an4")
def normalize_an4(text: str) -> str:
    """Strip AN4 markup (``<s>``, ``</s>``, trailing ``(utt-id)``), upper-case, collapse spaces."""
    return _SPACES.sub(" ", _AN4_MARKUP.sub(" ", text)).strip().upper()


@register_normalizer("upper")
def normalize_upper(text: str) -> str:
    """Upper-case, drop punctuation except apostrophes, collapse spaces (applied to hyp and ref before WER)."""
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text.upper())).strip()


def get_normalizer(name: str) -> Callable[[str], str]:
    if name not in NORMALIZERS:
        raise ValueError(f"unknown text normaliser {name!r}; choose one of {sorted(NORMALIZERS)}")
    return NORMALIZERS[name]


class CharTokenizer:
    """Characters as tokens; id 0 is the transducer/CTC blank. Characters not in ``vocab`` are dropped.

    ``specials`` (e.g. ``["<sot>", "<eot>"]``, the turn tokens of multi-talker models) are whole tokens after
    the characters (ids ``len(vocab) + 1 ...``): ``encode`` maps their literal text to one id each, ``decode``
    writes them back as space-separated words.
    """

    def __init__(self, vocab: str = " '" + string.ascii_uppercase, specials: list[str] | tuple = ()):
        if len(set(vocab)) != len(vocab):
            raise ValueError("character vocabulary has duplicates")
        if len(set(specials)) != len(specials) or any(len(t) < 2 for t in specials):
            raise ValueError("special tokens must be distinct and longer than one character")
        self.vocab = vocab
        self.specials = list(specials)
        self._ids = {c: i + 1 for i, c in enumerate(vocab)}
        self._special_ids = {t: len(vocab) + 1 + i for i, t in enumerate(self.specials)}
        self._split = re.compile("(" + "|".join(map(re.escape, self.specials)) + ")") if self.specials else None

    @property
    def vocab_size(self) -> int:  # including blank
        return len(self.vocab) + 1 + len(self.specials)

    def token_id(self, special: str) -> int:
        """The id of a special token (KeyError if this tokenizer has none of that name)."""
        return self._special_ids[special]

    def encode(self, text: str) -> list[int]:
        if self._split is None:
            return [self._ids[c] for c in text if c in self._ids]
        out: list[int] = []
        for part in self._split.split(text):
            if part in self._special_ids:
                out.append(self._special_ids[part])
            else:
                out += [self._ids[c] for c in part if c in self._ids]
        return out

    def decode(self, ids: list[int]) -> str:
        n = len(self.vocab)
        pieces = [self.vocab[i - 1] if 0 < i <= n else f" {self.specials[i - n - 1]} " for i in ids
                  if 0 < i <= n + len(self.specials)]
        return _SPACES.sub(" ", "".join(pieces)).strip()

    def config(self) -> dict:
        cfg = {"type": "char", "vocab": self.vocab}
        if self.specials:
            cfg["specials"] = list(self.specials)
        return cfg


class SentencePieceTokenizer:
    """A sentencepiece model; its ids are shifted by one so that 0 stays the blank."""

    def __init__(self, model_file: str | Path):
        import sentencepiece as spm

        self.model_file = Path(model_file)
        self.sp = spm.SentencePieceProcessor(model_file=str(model_file))

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size() + 1

    def encode(self, text: str) -> list[int]:
        return [i + 1 for i in self.sp.encode(text)]

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode([i - 1 for i in ids if i > 0])

    def config(self) -> dict:
        return {"type": "sentencepiece", "file": "tokenizer.model"}


def build_tokenizer(cfg: dict, folder: str | Path | None = None):
    """Build a tokenizer from its config.json entry; ``file`` paths resolve against ``folder``."""
    kind = cfg.get("type", "char")
    if kind == "char":
        return CharTokenizer(cfg.get("vocab") or CharTokenizer().vocab, cfg.get("specials") or ())
    if kind == "sentencepiece":
        f = Path(cfg["file"])
        if folder is not None and not f.is_absolute():
            f = Path(folder) / f
        return SentencePieceTokenizer(f)
    raise ValueError(f"unknown tokenizer type {kind!r}; use 'char' or 'sentencepiece'")
