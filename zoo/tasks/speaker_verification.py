"""Speaker-embedding training objective (the baseline of the ARW comparison): a pairwise metric-learning
loss over all pairs of a speaker-balanced batch, optionally plus AAM-softmax; dev-trial EER as ``val_eer``.

The loss. Embeddings are L2-normalised; for every unordered pair (i, j) of the batch the logit is
``z_ij = w * cos(e_i, e_j) + b`` with a learnable scale ``w`` and bias ``b`` (GE2E's affine calibration,
init 10 / -5) and the pair loss is binary cross-entropy against "same speaker":
``l_ij = BCE(z_ij, y_ij)``. Positives and negatives are balanced (all positive pairs share weight 1/2, all
negative pairs the other 1/2: ``a_ij = 1 / (2 n_pos)`` or ``1 / (2 n_neg)``). Why this loss: ARW's pairwise
variant (PW) needs a loss that is a *sum over pairs*, so that a pair weight ``w_ij = lambda_i + lambda_j``
multiplies exactly one term; triplet/GE2E/prototypical losses couple many pairs in one term. The binary
pairwise loss uses every pair of the batch (P x K batches: K-1 positives per utterance), is bounded
per pair, and its learnable (w, b) make the scores calibrated logits, as in GE2E.

The batch objective with per-sample weights ``lambda`` (all 1 in this baseline, so this is exactly the
balanced mean) is the self-normalised weighted mean

* ``pw`` (pairwise weighting): ``L = sum_ij a_ij w_ij l_ij / sum_ij a_ij w_ij`` with ``w_ij = lambda_i + lambda_j``;
* ``pl`` (per-sample): ``l_i = sum_j a_ij l_ij / sum_j a_ij`` and ``L = sum_i lambda_i l_i / sum_i lambda_i``.

Normalising by the weights keeps the loss scale (hence the effective learning rate) identical to the
baseline's, so the comparison isolates *where* the weight goes, not how much there is. (With ARL's lambda, whose
batch mean is 2, ``sum_ij w_ij`` over all pairs is a constant, so for unbalanced pairs this is ARL's
``mean(lambda * loss)`` up to a constant factor.)

Optimisation is manual (one optimizer here, two in ARW) so both tasks run the very same learner step:
zero_grad, backward, norm clipping at ``grad_clip``, step, scheduler step.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from zoo.data.trials import make_trials
from zoo.metrics.speaker import EER, cosine_trial_scores, sv_report
from zoo.models.speaker import SpeakerEmbedder
from zoo.nets import SpecAugment
from zoo.tasks.base import ZooTask


def random_crop(audio: torch.Tensor, lens: torch.Tensor, n: int, generator: torch.Generator | None = None):
    """Crop each utterance to a random window of ``n`` samples inside its valid part (shorter ones are kept
    whole). (B, S), (B,) -> (B, min(n, max len)), (B,)."""
    width = int(min(n, int(lens.max())))
    out = audio.new_zeros(audio.shape[0], width)
    new = torch.clamp(lens, max=width)
    for i in range(audio.shape[0]):
        L_i = int(lens[i])
        start = int(torch.randint(0, L_i - width + 1, (1,), generator=generator)) if L_i > width else 0
        out[i, : int(new[i])] = audio[i, start:start + int(new[i])]
    return out, new


def speaker_codes(speakers: list) -> torch.Tensor:
    """Speaker labels (any hashables) -> (B,) integer codes, equal iff same speaker."""
    idx: dict = {}
    return torch.tensor([idx.setdefault(s, len(idx)) for s in speakers], dtype=torch.long)


def pair_terms(emb: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> dict:
    """All-pairs binary loss of a batch.

    ``emb`` (B, D) (normalised here), ``codes`` (B,) speaker codes -> ``loss`` (B, B) per-pair BCE,
    ``a`` (B, B) balance weights (0 on the diagonal; symmetric), ``cos`` (B, B), ``target`` (B, B) bool.
    """
    e = F.normalize(emb, dim=-1)
    cos = e @ e.t()
    target = codes[:, None] == codes[None, :]
    off = ~torch.eye(len(codes), dtype=torch.bool, device=emb.device)
    pos, neg = target & off, ~target
    loss = F.binary_cross_entropy_with_logits(scale * cos + bias, target.float(), reduction="none")
    n_pos, n_neg = pos.sum().clamp_min(1), neg.sum().clamp_min(1)
    a = pos.float() / (2 * n_pos) + neg.float() / (2 * n_neg)
    if not pos.any() or not neg.any():  # only one kind of pair: plain mean over the pairs there are
        a = off.float() / off.sum().clamp_min(1)
    return {"loss": loss, "a": a, "cos": cos, "target": target}


def weighted_pair_loss(loss: torch.Tensor, a: torch.Tensor, lam: torch.Tensor | None, variant: str = "pw"):
    """Self-normalised weighted pair loss (see the module docstring). ``lam`` None = all ones."""
    if lam is None:
        lam = loss.new_ones(loss.shape[0])
    if variant == "pw":
        w = a * (lam[:, None] + lam[None, :])
        return (w * loss).sum() / w.sum().clamp_min(1e-12)
    if variant == "per_sample":
        per = (a * loss).sum(1) / a.sum(1).clamp_min(1e-12)
        return (lam * per).sum() / lam.sum().clamp_min(1e-12)
    raise ValueError(f"unknown pair weighting {variant!r}; use 'pw' or 'per_sample'")


class AAMSoftmax(nn.Module):
    """Additive angular margin softmax (ArcFace): ``s * cos(theta_y + m)`` for the true class.
    (B, D) embeddings, (B,) labels -> (B,) per-sample cross-entropy."""

    def __init__(self, embed_dim: int, num_classes: int, margin: float = 0.2, scale: float = 30.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, embed_dim) * 0.01)
        self.margin, self.scale = margin, scale

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.linear(F.normalize(emb, dim=-1), F.normalize(self.weight, dim=-1)).clamp(-1 + 1e-7, 1 - 1e-7)
        theta = torch.acos(cos)
        one_hot = F.one_hot(labels, cos.shape[1]).bool()
        logits = self.scale * torch.where(one_hot, torch.cos(theta + self.margin), cos)
        return F.cross_entropy(logits, labels, reduction="none")


class SpeakerVerificationTask(ZooTask):
    """Trains a :class:`~zoo.models.speaker.SpeakerEmbedder` (baseline: every sample weight is 1).

    Args:
        featurizer, encoder: the net's config (FbankFeaturizer / ECAPATDNN kwargs).
        init_from: start from a zoo speaker model (name, folder or Hub id) instead.
        pair_weighting: ``pw`` (pair weight = sum of its two sample weights) or ``per_sample`` (each sample's
            balanced mean pair loss weighted by its own weight); with weights 1 they differ only in averaging.
        scale_init, bias_init: initial w, b of the pair logits.
        aam_weight: weight of an AAM-softmax loss over the training speakers (0 disables it); margin, scale.
        crop_seconds: random training crop per utterance (None: whole utterances).
        spec_augment: SpecAugment kwargs or None.
        grad_clip: gradient-norm clipping of the learner (manual optimisation; 0 disables).
        stats_batches: training batches for the featurizer mean/std when training from scratch.
        val_max_nontarget: subsample dev nontarget trials to this many (None: all pairs).
        optimizer, scheduler: the learner's, from the CLI config; the scheduler is stepped every step.
    """

    def __init__(self, featurizer: dict | None = None, encoder: dict | None = None, init_from: str | None = None,
                 pair_weighting: str = "pw", scale_init: float = 10.0, bias_init: float = -5.0,
                 aam_weight: float = 0.0, aam_margin: float = 0.2, aam_scale: float = 30.0,
                 crop_seconds: float | None = 2.0, spec_augment: dict | None = None, grad_clip: float = 5.0,
                 stats_batches: int = 50, val_max_nontarget: int | None = None,
                 optimizer: OptimizerCallable = torch.optim.AdamW, scheduler: LRSchedulerCallable | None = None):
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.automatic_optimization = False
        if pair_weighting not in ("pw", "per_sample"):
            raise ValueError(f"unknown pair_weighting {pair_weighting!r}; use 'pw' or 'per_sample'")
        self.init_net(init_from, lambda: SpeakerEmbedder(featurizer, encoder), SpeakerEmbedder,
                      "a speaker-embedding model")
        self.pair_scale = nn.Parameter(torch.tensor(float(scale_init)))
        self.pair_bias = nn.Parameter(torch.tensor(float(bias_init)))
        self.aam: AAMSoftmax | None = None
        self.spec_augment = SpecAugment(**spec_augment) if spec_augment is not None else None
        self.val_eer = EER()
        self._eval_store: list = []

    # --- setup ------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.hparams.aam_weight > 0 and self.aam is None:
            dm = self.trainer.datamodule if self._trainer is not None else None
            n = getattr(dm, "num_speakers", 0)
            if not n:
                raise ValueError("aam_weight > 0 needs speaker labels: a SpeechDataModule with speaker_labels "
                                 "(corpus: an4_spk or sampler: speaker_balanced)")
            h = self.hparams
            self.aam = AAMSoftmax(self.net.embed_dim, n, h.aam_margin, h.aam_scale)

    def learner_parameters(self) -> list[nn.Parameter]:
        """Everything the learner optimizer updates: net, pair scale/bias, AAM head (not an adversary)."""
        return [p for n, p in self.named_parameters() if not n.startswith("adversary.")]

    def optimizer_parameters(self):
        return self.learner_parameters()

    def learner_optimizer(self):
        opts = self.optimizers()
        return opts[0] if isinstance(opts, list) else opts

    # --- forward + loss ---------------------------------------------------------------------------
    def embed_batch(self, audio: torch.Tensor, lens: torch.Tensor, augment: bool = False) -> torch.Tensor:
        """(B, S), (B,) -> (B, D) raw embeddings (SpecAugment on the features when ``augment``)."""
        feats, flens = self.net.featurizer(audio, lens)
        if augment and self.spec_augment is not None:
            feats = self.spec_augment(feats)
        return self.net.encoder(feats, flens)

    def batch_terms(self, batch, augment: bool = True) -> dict:
        audio, lens = batch["audio"], batch["audio_lens"]
        if augment and self.hparams.crop_seconds:
            audio, lens = random_crop(audio, lens, int(self.hparams.crop_seconds * self.net.sample_rate))
        emb = self.embed_batch(audio, lens, augment)
        terms = pair_terms(emb, speaker_codes(batch["speaker"]).to(emb.device), self.pair_scale, self.pair_bias)
        terms["emb"] = emb
        if self.aam is not None:
            labels = batch["speaker_index"].to(emb.device)
            terms["aam"] = self.aam(emb, labels.clamp_min(0)) * (labels >= 0)
        return terms

    def objective(self, terms: dict, lam: torch.Tensor | None) -> torch.Tensor:
        """The (weighted) loss both the learner minimises and, in ARW, the adversary maximises."""
        loss = weighted_pair_loss(terms["loss"], terms["a"], lam, self.hparams.pair_weighting)
        if "aam" in terms:
            w = torch.ones_like(terms["aam"]) if lam is None else lam
            loss = loss + self.hparams.aam_weight * (w * terms["aam"]).sum() / w.sum()
        return loss

    def sample_weights(self, terms: dict, batch) -> torch.Tensor | None:
        """Per-sample weights lambda (B,); the baseline has none (all 1)."""
        return None

    def adversary_step(self, terms: dict, lam: torch.Tensor | None) -> dict:
        """ARW's adversary update; nothing in the baseline."""
        return {}

    def training_step(self, batch, batch_idx):
        terms = self.batch_terms(batch, augment=True)
        lam = self.sample_weights(terms, batch)
        loss = self.objective(terms, None if lam is None else lam.detach())
        opt = self.learner_optimizer()
        opt.zero_grad()
        self.manual_backward(loss)
        if self.hparams.grad_clip:
            self.clip_gradients(opt, gradient_clip_val=self.hparams.grad_clip, gradient_clip_algorithm="norm")
        opt.step()
        sch = self.lr_schedulers()
        if sch is not None:
            (sch[0] if isinstance(sch, list) else sch).step()
        logs = self.adversary_step({k: v.detach() for k, v in terms.items()}, lam)
        bs = len(batch["speaker"])
        self.log("train_loss", loss.detach(), prog_bar=True, batch_size=bs)
        self.log_dict({"train_pair_scale": self.pair_scale.detach(), "train_pair_bias": self.pair_bias.detach(),
                       **logs}, batch_size=bs)
        if "aam" in terms:
            self.log("train_aam_loss", terms["aam"].detach().mean(), batch_size=bs)
        return loss.detach()

    # --- evaluation: EER on all cross-utterance pairs of the split ---------------------------------
    def _eval_step(self, batch) -> None:
        emb = F.normalize(self.embed_batch(batch["audio"], batch["audio_lens"]), dim=-1)
        self._eval_store.append((batch["id"], batch["speaker"], batch["gender"], emb.detach().cpu()))

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch)

    def test_step(self, batch, batch_idx):
        self._eval_step(batch)

    def _eval_trials(self):

        ids, spk, gen, embs = [], [], [], []
        for i, s, g, e in self._eval_store:
            ids += i; spk += s; gen += g; embs.append(e)
        self._eval_store = []
        if not ids:
            return None
        row = {u: k for k, u in enumerate(ids)}
        trials = make_trials(zip(ids, spk), max_nontarget=self.hparams.val_max_nontarget)
        if not trials or all(t for *_, t in trials) or not any(t for *_, t in trials):
            return None
        E = torch.cat(embs)
        scores, labels = cosine_trial_scores({u: E[k] for u, k in row.items()}, trials)
        scores, labels = torch.from_numpy(scores), torch.from_numpy(labels).long()
        a = [row[t[0]] for t in trials]
        b = [row[t[1]] for t in trials]
        return scores, labels, [spk[i] for i in a], [spk[i] for i in b], [gen[i] for i in a], [gen[i] for i in b]

    def _log_eval(self, stage: str) -> None:
        res = self._eval_trials()
        if res is None:
            return
        scores, labels, es, ts, eg, tg = res
        rep = sv_report(scores, labels, es, ts, eg, tg, n_boot=0)
        if stage == "val":
            self.val_eer.update(scores, labels)
            rep["eer"] = float(self.val_eer.compute())
            self.val_eer.reset()
        for k in ("eer", "min_dcf_0.01", "min_dcf_0.05", "eer_f", "eer_m", "gender_gap"):
            if k in rep:
                self.log(f"{stage}_{k}", float(rep[k]), prog_bar=k == "eer")

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val")

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")
