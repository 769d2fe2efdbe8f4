"""ARW: adversarial reweighting for speaker verification (Jin et al., Interspeech 2022), with the mechanics
of ARL (Lahoti et al., NeurIPS 2020; ``group_agnostic_fairness/adversarial_reweighting_model.py``).

Same learner, loss, data and optimizer as :class:`SpeakerVerificationTask`; the only difference is that
every training sample gets a weight ``lambda_i`` from an adversary:

* The paper's three formulations (Jin et al. name them; the abstract gives no formulas, so the exact forms are
  our choice) are two knobs here:

  ============  =====================  =====================================================================
  formulation   ``adversary_input``    ``pair_weighting``
  ============  =====================  =====================================================================
  PW            ``kmeans``             ``pw``: pair weight ``w_ij = lambda_i + lambda_j``
  PL            ``kmeans``             ``per_sample``: the adversary sees k-means pseudo-labels, each sample's
                                       mean pair loss is weighted by its own ``lambda_i``
  APS           ``aps``                ``per_sample``: the adversary sees each sample's accumulated pairwise
                                       similarity in the batch instead of a pseudo-label
  ablation      ``embedding``          either: no pseudo-label, no APS (embedding only)
  ============  =====================  =====================================================================

* Adversary inputs (per sample, all detached from the learner): the L2-normalised embedding of the sample
  (D), plus for ``kmeans`` a one-hot k-means cluster id (``n_clusters``), for ``aps`` two numbers: the mean
  cosine similarity to the sample's same-speaker and to its other-speaker partners in the batch (our
  definition of "accumulated pairwise similarity": hard samples have low positive and high negative
  similarity; 0 where a sample has no partner of that kind). The clusters are ARW's pseudo-labels:
  k-means (scikit-learn, k-means++, ``random_state=seed``) over the embeddings of the whole training set
  (whole utterances, eval mode), computed when the adversary starts and again every ``kmeans_every``
  epochs; a training utterance takes its cluster from that pass by cut id, and an utterance the pass did
  not see (e.g. a speed-perturbed copy) takes the nearest centroid (cosine). Speaker labels are never an
  input: ARL's "label" input has no open-set analogue, the pseudo-label stands in for it.
* Adversary: ``Linear(D + extra, hidden) -> ReLU -> Linear(hidden, 1)`` -> sigmoid ``s_i``;
  ``lambda_i = 1 + n * s_i / sum_j s_j`` (ARL's normalisation: batch mean 2, every weight >= 1, never 0).
* Both weightings are self-normalised (see ``zoo.tasks.speaker_verification``); an AAM-softmax term, if
  enabled, is weighted by ``lambda_i``.
* Min-max: on every batch, after ``adversary_warmup`` learner-only steps, the learner takes a step on the
  weighted loss with lambda detached, and the adversary takes a step on *minus* the same weighted loss with
  the pair losses detached (both gradients at the same parameters, as ARL's ``tf.group``). Two optimizers,
  Lightning manual optimisation; each updates only its own parameters.
* Budget: ``trainer.max_steps`` counts learner steps, exactly as in the baseline: the adversary's step
  bypasses Lightning's step counter (it steps the wrapped torch optimizer directly).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from zoo.tasks.speaker_verification import SpeakerVerificationTask


def arl_weights(logits: torch.Tensor) -> torch.Tensor:
    """Adversary logits (B,) -> ARL sample weights ``1 + B * sigmoid(f_i) / sum_j sigmoid(f_j)`` (mean 2, >= 1)."""
    s = torch.sigmoid(logits)
    return 1.0 + s.numel() * s / s.sum().clamp_min(1e-12)


ADVERSARY_INPUTS = ("kmeans", "aps", "embedding")


def accumulated_pairwise_similarity(cos: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, B) cosine similarities + (B, B) same-speaker mask -> (B, 2): per sample, the mean similarity to its
    same-speaker partners (itself excluded) and to its other-speaker partners (0 where it has none)."""
    off = ~torch.eye(len(cos), dtype=torch.bool, device=cos.device)
    pos, neg = (target & off).float(), (~target).float()
    return torch.stack([(cos * pos).sum(1) / pos.sum(1).clamp_min(1), (cos * neg).sum(1) / neg.sum(1).clamp_min(1)], -1)


class Adversary(nn.Module):
    """(B, D) normalised embeddings + (B, extra) side input (one-hot pseudo-label, APS, or nothing) -> (B,) logits."""

    def __init__(self, embed_dim: int, extra_dim: int, hidden: int = 32):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(embed_dim + extra_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, emb: torch.Tensor, side: torch.Tensor | None = None) -> torch.Tensor:
        x = emb if side is None else torch.cat([emb, side.to(emb.dtype)], dim=-1)
        return self.mlp(x).squeeze(-1)


class ARWTask(SpeakerVerificationTask):
    """:class:`SpeakerVerificationTask` + an adversary that reweights samples (see the module docstring).

    Args (besides the baseline's, which are passed through unchanged):
        adversary_hidden: hidden units of the adversary MLP.
        adversary_input: ``kmeans`` (PW / PL), ``aps`` (APS) or ``embedding`` (ablation); see the module doc.
        n_clusters: k of the k-means pseudo-labels (``kmeans`` only).
        kmeans_every: recompute the clusters every this many epochs (once the adversary is active).
        adversary_warmup: learner-only steps before the adversary starts (ARL's ``pretrain_steps``).
        adversary_optimizer: the adversary's optimizer (default Adagrad lr 0.01, as ARL).
    """

    def __init__(self, adversary_hidden: int = 32, adversary_input: str = "kmeans", n_clusters: int = 8,
                 kmeans_every: int = 2, adversary_warmup: int = 100,
                 adversary_optimizer: OptimizerCallable | None = None, **kwargs):
        super().__init__(**kwargs)
        self.save_hyperparameters(ignore=["optimizer", "scheduler", "adversary_optimizer"])
        if adversary_input not in ADVERSARY_INPUTS:
            raise ValueError(f"unknown adversary_input {adversary_input!r}; use one of {list(ADVERSARY_INPUTS)}")
        extra = {"kmeans": n_clusters, "aps": 2, "embedding": 0}[adversary_input]
        self.adversary = Adversary(self.net.embed_dim, extra, adversary_hidden)
        self.adversary_optimizer_factory = adversary_optimizer or (lambda p: torch.optim.Adagrad(p, lr=0.01))
        self.register_buffer("centroids", torch.zeros(n_clusters, self.net.embed_dim))
        self.cluster_of: dict[str, int] = {}
        self.kmeans_epoch: int | None = None

    def configure_optimizers(self):
        learner = super().configure_optimizers()
        adv = self.adversary_optimizer_factory(self.adversary.parameters())
        if isinstance(learner, dict):  # optimizer + per-step scheduler
            return [learner["optimizer"], adv], [learner["lr_scheduler"]]
        return [learner, adv]

    @property
    def adversary_active(self) -> bool:
        return self.global_step >= self.hparams.adversary_warmup

    # --- k-means pseudo-labels --------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        n = self.trainer.num_training_batches
        n = n if n is not None and math.isfinite(n) else 0
        soon = self.global_step + n >= self.hparams.adversary_warmup
        due = self.kmeans_epoch is None or self.current_epoch - self.kmeans_epoch >= self.hparams.kmeans_every
        if self.hparams.adversary_input == "kmeans" and soon and due:
            self.refresh_clusters()

    @torch.no_grad()
    def refresh_clusters(self) -> None:
        """k-means over the embeddings of the training set (whole utterances, eval mode)."""
        from sklearn.cluster import KMeans

        dm = self.trainer.datamodule
        if dm is None or not hasattr(dm, "plain_dataloader"):
            raise RuntimeError("ARWTask needs a SpeechDataModule (plain_dataloader) to cluster the training set")
        was = self.training
        self.eval()
        ids, embs = [], []
        for batch in dm.plain_dataloader("train"):
            e = self.embed_batch(batch["audio"].to(self.device), batch["audio_lens"].to(self.device))
            ids += batch["id"]
            embs.append(F.normalize(e, dim=-1).cpu())
        self.train(was)
        E = torch.cat(embs).double().numpy()
        k = self.hparams.n_clusters
        km = KMeans(n_clusters=k, n_init=4, random_state=self.trainer.current_epoch + 1000 * self._seed()).fit(E)
        self.centroids.copy_(torch.as_tensor(km.cluster_centers_, dtype=self.centroids.dtype))
        self.cluster_of = dict(zip(ids, km.labels_.tolist()))
        self.kmeans_epoch = self.current_epoch
        counts = torch.bincount(torch.as_tensor(km.labels_), minlength=k).float()
        self.log("kmeans_largest_cluster_frac", float(counts.max() / counts.sum()))

    def _seed(self) -> int:
        import os

        return int(os.environ.get("PL_GLOBAL_SEED", 0))

    def clusters(self, ids: list[str], emb: torch.Tensor) -> torch.Tensor:
        """Cluster id per sample: from the last k-means pass by id, else the nearest centroid."""
        near = (F.normalize(emb, dim=-1) @ F.normalize(self.centroids, dim=-1).t()).argmax(-1)
        known = torch.tensor([self.cluster_of.get(i, -1) for i in ids], device=emb.device)
        return torch.where(known >= 0, known, near)

    # --- reweighting + adversary step ---------------------------------------------------------------
    def sample_weights(self, terms: dict, batch) -> torch.Tensor | None:
        if not self.adversary_active:
            return None
        emb = F.normalize(terms["emb"].detach(), dim=-1)
        kind = self.hparams.adversary_input
        if kind == "kmeans":
            side = F.one_hot(self.clusters(batch["id"], emb), self.hparams.n_clusters)
        elif kind == "aps":
            side = accumulated_pairwise_similarity(terms["cos"].detach(), terms["target"])
        else:
            side = None
        return arl_weights(self.adversary(emb, side))

    def adversary_step(self, terms: dict, lam: torch.Tensor | None) -> dict:
        if lam is None:
            return {}
        adv_loss = -self.objective(terms, lam)  # terms are detached: only the adversary gets gradients
        opt = self.optimizers()[1]
        opt.zero_grad()
        self.manual_backward(adv_loss)
        opt.optimizer.step()  # the raw optimizer: global_step keeps counting learner steps only
        lam = lam.detach()
        return {"train_adv_loss": adv_loss.detach(), "train_lambda_max": lam.max(), "train_lambda_std": lam.std()}
