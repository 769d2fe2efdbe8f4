"""``CohortInput``: cohort membership as an extra input of an ASR encoder (Dheram et al., Interspeech 2022, the
second mitigation): a learned vector per cohort, added to the normalised log-mel features of every frame.

Cohorts are k-means clusters of speaker embeddings. An utterance's cohort is given (training: its speaker's
cluster) or found from the audio: the utterance's speaker embedding (its first ``assign_ms`` of audio; the same
window in batch and streaming inference, so both pick the same cohort) -> the nearest centroid.

The embedding table starts at zero, so a released model with a fresh ``CohortInput`` computes exactly what it
computed without one; fine-tuning then learns the per-cohort offsets. The speaker network is frozen: its
weights never train and it always runs in eval mode (its BatchNorm statistics never move), also while the
model trains.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

METRICS = ("euclidean", "cosine")


def nearest_centroid(emb: torch.Tensor, centroids: torch.Tensor, metric: str = "euclidean") -> torch.Tensor:
    """(B, D) embeddings, (K, D) centroids -> (B,) index of the nearest centroid.

    ``euclidean``: smallest squared distance (what k-means assigns: the training speakers' clusters);
    ``cosine``: largest cosine similarity. Ties go to the lower index."""
    dtype = torch.promote_types(torch.promote_types(emb.dtype, centroids.dtype), torch.float32)
    emb, centroids = emb.to(dtype), centroids.to(dtype)
    if metric == "euclidean":
        return torch.cdist(emb, centroids).argmin(-1)
    if metric == "cosine":
        return (F.normalize(emb, dim=-1) @ F.normalize(centroids, dim=-1).T).argmax(-1)
    raise ValueError(f"cohort metric must be one of {METRICS} (got {metric!r})")


class CohortInput(nn.Module):
    """Per-cohort additive offsets of the features, and the cohort of an utterance from its audio.

    Args:
        n_cohorts: K.
        dim: feature dimension (the ASR featurizer's ``n_mels``).
        centroids: (K, D) k-means centroids of the (L2-normalised) speaker embeddings.
        speaker: the frozen speaker network: ``speaker(wav (B, S), lengths (B,)) -> (B, D)`` L2-normalised
            embeddings, with a ``featurizer`` (``sample_rate``, ``win``); None = cohorts must always be given.
        assign_ms: audio used for the embedding (the start of the utterance); None = the whole utterance.
        metric: ``euclidean`` (k-means' own assignment) or ``cosine``.
    """

    centroids: torch.Tensor  # (K, D) buffer (non-persistent: the config holds the centroids)

    def __init__(self, n_cohorts: int, dim: int, centroids: Sequence | torch.Tensor, speaker: nn.Module | None = None,
                 assign_ms: float | None = 2000.0, metric: str = "euclidean"):
        super().__init__()
        c = torch.as_tensor(centroids, dtype=torch.float32)
        if c.dim() != 2 or c.shape[0] != n_cohorts:
            raise ValueError(f"cohort centroids must be a list of n_cohorts={n_cohorts} vectors "
                             f"(got shape {tuple(c.shape)})")
        if metric not in METRICS:
            raise ValueError(f"cohort metric must be one of {METRICS} (got {metric!r})")
        if assign_ms is not None and assign_ms <= 0:
            raise ValueError(f"cohort assign_ms must be positive or null (got {assign_ms})")
        self.n_cohorts, self.metric = int(n_cohorts), metric
        self.assign_ms = None if assign_ms is None else float(assign_ms)
        self.embedding = nn.Embedding(self.n_cohorts, dim)
        nn.init.zeros_(self.embedding.weight)  # starts as the identity: outputs equal the model without it
        self.register_buffer("centroids", c, persistent=False)
        self.speaker = speaker
        self.sample_rate: int | None = None
        self.min_samples = 1
        if speaker is not None:
            speaker.requires_grad_(False)
            fz = getattr(speaker, "featurizer")
            self.sample_rate, self.min_samples = int(fz.sample_rate), int(fz.win)  # >= 1 analysis frame

    @property
    def assign_samples(self) -> int | None:
        """Samples at the start of an utterance that decide its cohort (None: all of them)."""
        if self.assign_ms is None or self.sample_rate is None:
            return None
        return max(1, int(round(self.sample_rate * self.assign_ms / 1000)))

    @torch.no_grad()
    def assign(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, S) audio, (B,) sample counts -> (B,) cohort ids: the nearest centroid of each utterance's speaker
        embedding over its first ``assign_ms``."""
        if self.speaker is None:
            raise ValueError("this cohort input has no speaker network: pass the cohort ids explicitly")
        if lengths is None:
            lengths = torch.full((wav.shape[0],), wav.shape[-1], dtype=torch.long, device=wav.device)
        n = self.assign_samples
        if n is not None:
            wav, lengths = wav[:, :n], lengths.clamp(max=n)
        win = self.min_samples  # at least one analysis frame (shorter audio: zero-padded)
        if wav.shape[-1] < win:
            wav = F.pad(wav, (0, win - wav.shape[-1]))
        lengths = lengths.clamp(min=win)
        was_training = self.speaker.training
        self.speaker.eval()  # frozen: BatchNorm uses (and keeps) its running statistics, also while training
        try:
            with torch.autocast(wav.device.type, enabled=False):
                emb = self.speaker(wav.float(), lengths)
        finally:
            self.speaker.train(was_training)
        return nearest_centroid(emb, self.centroids, self.metric)

    def forward(self, feats: torch.Tensor, cohort: torch.Tensor) -> torch.Tensor:
        """(B, T, F) features + the (B,) cohorts' vectors, broadcast over time."""
        return feats + self.embedding(cohort).to(feats.dtype)[:, None, :]
