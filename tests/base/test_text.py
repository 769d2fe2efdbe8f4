"""Normalisers and tokenizers, including a sentencepiece tokenizer travelling inside a model folder."""
from __future__ import annotations

import pytest
import torch

from zoo.text import CharTokenizer, build_tokenizer, get_normalizer, normalize_an4, normalize_upper


def test_an4_normaliser_strips_markup():
    assert normalize_an4("<s> YES </s> (an251-fash-b)") == "YES"
    assert normalize_an4("RUBOUT G M E F THREE NINE (an406-fcaw-b)") == "RUBOUT G M E F THREE NINE"


def test_upper_normaliser():
    assert normalize_upper("  hello, World!  it's ") == "HELLO WORLD IT'S"
    with pytest.raises(ValueError, match="unknown text normaliser"):
        get_normalizer("nope")


def test_char_tokenizer_roundtrip_and_blank():
    tok = CharTokenizer()
    ids = tok.encode("HELLO WORLD")
    assert 0 not in ids and tok.decode(ids) == "HELLO WORLD"
    assert tok.decode([0] + ids + [0]) == "HELLO WORLD"
    assert tok.encode("hé") == []  # unknown characters dropped
    assert build_tokenizer(tok.config()).vocab == tok.vocab


def test_sentencepiece_tokenizer_in_model_folder(tmp_path, an4_root):
    import sentencepiece as spm

    from zoo.models.base import load_folder, model_config, save_pretrained
    from zoo.models.transducer import TransducerASR
    from zoo.text import SentencePieceTokenizer

    lines = [normalize_an4(x) for x in (an4_root / "etc" / "an4_train.transcription").read_text().splitlines()]
    (tmp_path / "text.txt").write_text("\n".join(lines))
    spm.SentencePieceTrainer.train(input=str(tmp_path / "text.txt"), model_prefix=str(tmp_path / "spm"),
                                   vocab_size=64, model_type="unigram", minloglevel=2)
    tok = SentencePieceTokenizer(tmp_path / "spm.model")
    ids = tok.encode("ERASE C Q Q F SEVEN")
    assert min(ids) >= 1 and tok.decode(ids) == "ERASE C Q Q F SEVEN"

    net = TransducerASR({"name": "lstm", "hidden": 16, "layers": 1}, {"embed_dim": 8, "hidden": 16},
                        {"joint_dim": 16}, {"n_mels": 40}, tokenizer=tok)
    folder = save_pretrained(net, tmp_path / "spm-model", config=model_config(net))
    assert (folder / "tokenizer.model").is_file()
    (tmp_path / "spm.model").unlink()  # the folder must be self-contained
    again = load_folder(folder)
    assert again.tokenizer.vocab_size == tok.vocab_size == net.joiner.out.out_features
    x = torch.randn(8000) * 0.1
    assert again.transcribe([x], sample_rate=16000) == net.transcribe([x], sample_rate=16000)
