"""``SpeakerEmbedder``: featurizer + ECAPA-TDNN, with ``embed()``, ``score()`` and ``verify()``. This is what
``zoo.from_pretrained`` returns for speaker-verification models (architecture ``ecapa``)."""
from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.nn.functional as F

from zoo.audio import load_inputs
from zoo.errors import ZooError
from zoo.models.base import ZooModel, register_architecture
from zoo.nets import FbankFeaturizer
from zoo.nets.ecapa import ECAPATDNN


@register_architecture("ecapa", task="speaker")
class SpeakerEmbedder(ZooModel):
    """Speaker embeddings from raw audio.

    Args:
        featurizer: FbankFeaturizer kwargs (its mean/std buffers are part of the weights).
        encoder: ECAPATDNN kwargs (``input_dim`` is the featurizer's dim).

    The verification threshold is not a weight: it lives in the model folder's ``config.json`` under
    ``verification.threshold`` (the cosine score at the equal-error point of a dev trial list, written by
    ``scripts/release_speaker.py``), and is read from ``zoo_config`` after ``from_pretrained``.
    """

    card_metadata = {"task_type": "speaker-verification", "pipeline_tag": None, "metrics": ["eer", "mindcf"],
                     "tags": ["speech", "speaker-verification", "speaker-embedding", "ecapa-tdnn", "fairness",
                              "lightning"]}

    needs_tokenizer = False

    def __init__(self, featurizer: dict | None = None, encoder: dict | None = None):
        super().__init__()
        self.featurizer = FbankFeaturizer(**(featurizer or {}))
        enc = dict(encoder or {})
        enc.setdefault("input_dim", self.featurizer.dim)
        self.encoder = ECAPATDNN(**enc)

    def config(self) -> dict:
        return {"featurizer": self.featurizer.config(), "encoder": self.encoder.config()}

    @property
    def embed_dim(self) -> int:
        return self.encoder.embed_dim

    @property
    def threshold(self) -> float | None:
        t = (self.zoo_config.get("verification") or {}).get("threshold")
        return None if t is None else float(t)

    # --- batch inference ------------------------------------------------------------------------
    def encode(self, wav: torch.Tensor, lengths: torch.Tensor | None = None):
        """(B, S) audio, (B,) sample counts -> (B, D) raw (un-normalised) embeddings, (B,) frame counts."""
        feats, flens = self.featurizer(wav, lengths)
        return self.encoder(feats, flens), flens

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, S) audio -> (B, D) L2-normalised embeddings."""
        return F.normalize(self.encode(wav, lengths)[0], dim=-1)

    def load_inputs(self, inputs, sample_rate: int | None) -> list[torch.Tensor]:
        out = load_inputs(inputs, sample_rate, self.sample_rate, verb="embedding")
        min_len = self.featurizer.win
        for i, w in enumerate(out):
            if w.numel() < min_len:
                name = inputs[i] if isinstance(inputs[i], (str, os.PathLike)) else f"waveform {i}"
                raise ZooError(f"{name} is too short for a speaker embedding ({w.numel()} samples; "
                               f"at least {min_len} at {self.sample_rate} Hz)")
        return out

    @torch.inference_mode()
    def embed(self, inputs: Sequence | str | torch.Tensor, sample_rate: int | None = None,
              batch_size: int = 16) -> torch.Tensor:
        """Audio files (paths) or waveforms ((S,) or (C, S) with ``sample_rate``) -> (N, D) L2-normalised.

        Utterances are batched by length; the result does not depend on the batching.
        """
        if isinstance(inputs, (list, tuple)) and not inputs:
            raise ZooError("nothing to embed: give at least one audio file or waveform")
        out = self.map_batches(inputs, sample_rate, batch_size, lambda wav, lens: self(wav, lens),
                               sort_by_length=True)
        return torch.stack(out).cpu()

    @staticmethod
    def score(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of matching rows: (N, D), (N, D) -> (N,) (or (D,), (D,) -> scalar)."""
        return F.cosine_similarity(torch.as_tensor(a), torch.as_tensor(b), dim=-1)

    def verify(self, a, b, sample_rate: int | None = None, threshold: float | None = None) -> tuple[float, bool]:
        """Same speaker? ``a``, ``b``: a path or a waveform each. Returns (cosine score, score >= threshold).

        The threshold is the model folder's calibrated one unless ``threshold`` is given.
        """
        t = self.threshold if threshold is None else float(threshold)
        if t is None:
            raise ZooError("this model has no calibrated verification threshold (config.json verification.threshold); "
                           "calibrate it on dev trials with scripts/release_speaker.py, "
                           "or pass threshold= (--threshold)")
        e = self.embed([a, b], sample_rate=sample_rate)
        s = float(self.score(e[0], e[1]))
        return s, s >= t
