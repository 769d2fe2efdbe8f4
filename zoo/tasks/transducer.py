"""RNN-T training objective: torchaudio ``rnnt_loss`` + optional CTC auxiliary loss + SpecAugment."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics.text import CharErrorRate, WordErrorRate

from zoo.errors import ZooError
from zoo.models.speaker import SpeakerEmbedder
from zoo.models.transducer import TransducerASR
from zoo.nets import SpecAugment
from zoo.tasks.base import ZooTask, pretrained_net
from zoo.tasks.regularizers import build_regularizer, set_trainable
from zoo.text import build_tokenizer, get_normalizer


class TransducerTask(ZooTask):
    """Trains a :class:`~zoo.models.transducer.TransducerASR`.

    Args:
        encoder, predictor, joiner, featurizer: the net's config (see ``TransducerASR``).
        tokenizer: ``{"type": "char", "vocab": "..."}`` or ``{"type": "sentencepiece", "file": "x.model"}``.
        init_from: fine-tune: take architecture, tokenizer and weights from a zoo model (name, folder or
            Hub id); the config's net fields are then ignored. Resuming a run is ``--ckpt_path`` instead.
        ctc_weight: weight of the CTC auxiliary loss on the encoder (0 disables it).
        spec_augment: SpecAugment kwargs, or null to disable.
        normalizer: text normaliser applied to references before tokenizing and to both sides of WER.
        val_beam_size, test_beam_size: 1 = greedy.
        stats_batches: training batches used to estimate the featurizer's mean/std when training from scratch.
        compute_weight: lambda of the compute-cost loss ``lambda * expected compute fraction`` for encoders
            with learned gates (``encoder.expected_compute`` is not None, e.g. cca_transformer); 0 disables it.
        gate_tau: (start, end) Gumbel-sigmoid temperature, annealed geometrically over ``trainer.max_steps``.
        delayed_start: optimizer steps during which the encoder's ``delayed_parameters()`` stay frozen (ConvRNN-T:
            the CNN branches and fusion, so the LSTMs first learn the acoustics as in the LSTM baseline).
        regularizer: a penalty pulling the weights toward the ones training starts from (``init_from``), added to
            the training loss: ``{type: ewc, weight: λ, fisher: path}`` (elastic weight consolidation) or
            ``{type: l2sp, weight: λ}`` (F = 1); see ``zoo.tasks.regularizers``.
        trainable: ``all``, or the net parts to fine-tune (``encoder`` | ``predictor`` | ``joiner`` or a list);
            the rest is frozen (the CTC head trains only with the encoder; a cohort input always trains).
        cohort_input: cohort membership as an extra encoder input (Dheram et al. 2022, ``zoo.nets.cohort``):
            ``{file: cohorts.json}`` (written by ``scripts/cohort_input.py``: speaker model, k-means centroids,
            speaker -> cohort map) or ``{speaker_model: name, centroids: [[...]] | file (.json / .npy)}``, plus
            optional ``assign_ms`` (audio that picks an unknown utterance's cohort, default 2000) and ``metric``
            (``euclidean`` = k-means' assignment, default; or ``cosine``). The net (``init_from`` or fresh) gets a
            zero-initialised cohort embedding, so training starts exactly at ``init_from``. Batches give each
            utterance's cohort (``data.cohorts``, the same file); utterances without one (-1, or no ``cohort``
            in the batch: val / test speakers) get the nearest centroid of their speaker embedding, as at
            inference.
        optimizer, scheduler: from the CLI config; the scheduler is stepped every optimizer step.
    """

    def __init__(self, encoder: dict | None = None, predictor: dict | None = None, joiner: dict | None = None,
                 featurizer: dict | None = None, tokenizer: dict | None = None, init_from: str | None = None,
                 ctc_weight: float = 0.3, spec_augment: dict | None = None, normalizer: str = "upper",
                 val_beam_size: int = 1, test_beam_size: int = 4, stats_batches: int = 100,
                 compute_weight: float = 0.0, gate_tau: tuple[float, float] = (1.0, 0.1),
                 delayed_start: int = 0, regularizer: dict | None = None, trainable: str | list[str] = "all",
                 cohort_input: dict | None = None,
                 optimizer: OptimizerCallable = torch.optim.AdamW, scheduler: LRSchedulerCallable | None = None):
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.init_net(init_from, lambda: TransducerASR(encoder or {"name": "lstm"}, predictor, joiner, featurizer,
                                                       build_tokenizer(tokenizer or {"type": "char"})),
                      TransducerASR, "a transducer ASR model")
        if cohort_input is not None:
            attach_cohort_input(self.net, cohort_input)
        v = self.net.tokenizer.vocab_size
        self.ctc_head = nn.Linear(self.net.encoder.output_dim, v) if ctc_weight > 0 else None
        self.spec_augment = SpecAugment(**spec_augment) if spec_augment is not None else None
        self.regularizer = build_regularizer(regularizer, self.net) if regularizer else None
        self._frozen: set[int] = set_trainable(self.net, trainable, encoder_heads=(self.ctc_head,))
        if self.net.cohort is not None:  # the cohort vectors always train; the speaker net never does
            for p in self.net.cohort.embedding.parameters():
                p.requires_grad_(True)
                self._frozen.discard(id(p))
        self.normalize = get_normalizer(normalizer)
        self.val_wer, self.val_cer = WordErrorRate(), CharErrorRate()
        self.test_wer, self.test_cer = WordErrorRate(), CharErrorRate()

    # --- losses ---------------------------------------------------------------------------------
    def _targets(self, texts: list[str]):
        ids = [torch.tensor(self.net.tokenizer.encode(self.normalize(t)), dtype=torch.long) for t in texts]
        lens = torch.tensor([len(i) for i in ids], dtype=torch.long, device=self.device)
        y = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True).to(self.device) if ids else None
        return y, lens

    def _forward_loss(self, batch, augment: bool):
        with torch.autocast(self.device.type, enabled=False):  # features in fp32 even under bf16-mixed
            feats, flens = self.net.featurizer(batch["audio"].float(), batch["audio_lens"])
        if augment and self.spec_augment is not None:
            feats = self.spec_augment(feats)
        # after SpecAugment: the cohort is metadata, never masked; at inference (no SpecAugment) the same sum
        feats = self.net.add_cohort(feats, self._cohorts(batch))
        enc, elens = self.net.encoder(feats, flens)
        y, ylens = self._targets(batch["text"])
        pred = self.net.predictor(y)
        logits = self.net.joiner(enc.unsqueeze(2), pred.unsqueeze(1))  # (B, T, U+1, V)
        rnnt = torchaudio.functional.rnnt_loss(logits.float(), y.int(), elens.int(), ylens.int(), blank=0,
                                               reduction="mean")
        loss, logs = rnnt, {"rnnt_loss": rnnt}
        if self.ctc_head is not None:
            lp = self.ctc_head(enc).float().log_softmax(-1).transpose(0, 1)
            ctc = F.ctc_loss(lp, y, elens, ylens, blank=0, reduction="sum", zero_infinity=True) / y.shape[0]
            w = self.hparams.ctc_weight
            loss = (1 - w) * rnnt + w * ctc
            logs["ctc_loss"] = ctc
        frac = self.net.encoder.expected_compute(elens)
        if frac is not None:
            logs["compute_frac"] = frac.detach()
            if self.hparams.compute_weight > 0:
                loss = loss + self.hparams.compute_weight * frac
        return loss, logs, enc, elens

    def _cohorts(self, batch) -> torch.Tensor | None:
        """(B,) cohort ids of a batch for a net with a cohort input: the batch's ``cohort`` (``data.cohorts``),
        -1 or absent -> the nearest centroid of the utterance's speaker embedding; None without a cohort input."""
        if self.net.cohort is None:
            return None
        return self.net.cohort_ids(batch["audio"].float(), batch["audio_lens"], batch.get("cohort"))

    def training_step(self, batch, batch_idx):
        if self.hparams.delayed_start > 0:  # frozen params get no grad, so AdamW skips them (no decay either)
            for p in self.net.encoder.delayed_parameters():
                p.requires_grad_(self.global_step >= self.hparams.delayed_start and id(p) not in self._frozen)
        t0, t1 = self.hparams.gate_tau  # annealed geometrically; encoders without learned gates ignore it
        total = max(1, self.trainer.max_steps if self.trainer.max_steps > 0 else 10_000)
        self.net.encoder.set_gate_temperature(t0 * (t1 / t0) ** min(1.0, self.global_step / total))
        loss, logs, _, _ = self._forward_loss(batch, augment=True)
        if self.regularizer is not None:
            logs["reg"] = self.regularizer(self.net)
            loss = loss + logs["reg"]
        bs = len(batch["text"])
        self.log("train_loss", loss, prog_bar=True, batch_size=bs)
        self.log_dict({f"train_{k}": v for k, v in logs.items()}, batch_size=bs)
        return loss

    def _eval_step(self, batch, stage: str, beam: int):
        loss, _, enc, elens = self._forward_loss(batch, augment=False)
        hyps = [self.normalize(self.net.tokenizer.decode(h)) for h in self.net.decode(enc, elens, beam)]
        refs = [self.normalize(t) for t in batch["text"]]
        wer, cer = (self.val_wer, self.val_cer) if stage == "val" else (self.test_wer, self.test_cer)
        wer.update(hyps, refs)
        cer.update(hyps, refs)
        bs = len(refs)
        self.log(f"{stage}_loss", loss, batch_size=bs, sync_dist=True)
        self.log(f"{stage}_wer", wer, prog_bar=True, batch_size=bs)
        self.log(f"{stage}_cer", cer, batch_size=bs)

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val", self.hparams.val_beam_size)

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test", self.hparams.test_beam_size)

    def predict_step(self, batch, batch_idx):
        enc, elens = self.net.encode(batch["audio"], batch["audio_lens"],
                                     batch.get("cohort") if self.net.cohort is not None else None)
        return [self.net.tokenizer.decode(h) for h in self.net.decode(enc, elens, self.hparams.test_beam_size)]

    # --- export ---------------------------------------------------------------------------------
    def zoo_config_extra(self) -> dict:
        return {"normalizer": self.hparams.normalizer}


# --- cohort input ---------------------------------------------------------------------------------------
COHORT_KEYS = {"file", "speaker_model", "centroids", "assign_ms", "metric"}


def cohort_spec(cfg: dict) -> dict:
    """``cohort_input`` of the task -> {"centroids": K x D list, "speaker_model", "assign_ms", "metric"}: from
    ``file`` (``scripts/cohort_input.py``'s JSON: ``speaker_model``, ``centroids``, ``speakers``) and/or the
    keys given (which win)."""
    cfg = dict(cfg)
    unknown = sorted(set(cfg) - COHORT_KEYS)
    if unknown:
        raise ZooError(f"unknown cohort_input option(s) {unknown} — use {', '.join(sorted(COHORT_KEYS))}")
    spec: dict = {"speaker_model": None, "centroids": None, "assign_ms": 2000.0, "metric": "euclidean"}
    if cfg.get("file") is not None:
        path = Path(cfg.pop("file"))
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ZooError(f"cohort file not found: {path} — make it with scripts/cohort_input.py") from None
        except json.JSONDecodeError as e:
            raise ZooError(f"{path} is not valid JSON ({e.msg}) — give the file scripts/cohort_input.py "
                           "writes") from None
        if not isinstance(data, dict):
            raise ZooError(f"{path} holds no cohort object — give the file scripts/cohort_input.py writes")
        spec.update({k: data[k] for k in ("speaker_model", "centroids", "assign_ms", "metric") if k in data})
    spec.update({k: v for k, v in cfg.items() if v is not None and k != "file"})
    cents = spec["centroids"]
    if isinstance(cents, (str, Path)):
        cents = np.load(cents) if str(cents).endswith(".npy") else json.loads(Path(cents).read_text())
        if isinstance(cents, dict):
            cents = cents.get("centroids")
    if cents is None or np.asarray(cents).ndim != 2 or not len(cents):
        raise ZooError("cohort_input needs the k-means centroids (K x D) — give file: <scripts/cohort_input.py "
                       "output> or centroids:")
    spec["centroids"] = np.asarray(cents, dtype=np.float64).tolist()
    return spec


def attach_cohort_input(net: TransducerASR, cfg: dict) -> None:
    """Give ``net`` the cohort input of ``cfg`` (``TransducerTask.cohort_input``): a zero-initialised embedding,
    the centroids and the frozen speaker model (loaded by name, folder or Hub id). A net that already has one
    (``init_from`` a cohort-input model) keeps it if the centroids match."""
    spec = cohort_spec(cfg)
    k = len(spec["centroids"])
    if net.cohort is not None:
        same = net.cohort_count == k and torch.allclose(net.cohort.centroids.cpu(),
                                                        torch.tensor(spec["centroids"], dtype=torch.float32))
        if not same:
            raise ZooError(f"{net.source or 'the model'} already has a cohort input with other cohorts — fine-tune "
                           "it without model.init_args.cohort_input, or start from a model without one")
        return
    speaker = None
    if spec["speaker_model"] is not None:
        speaker = pretrained_net(str(spec["speaker_model"]), SpeakerEmbedder, "a speaker-embedding model")
    net.add_cohort_input(spec["centroids"], speaker, speaker_model=spec["speaker_model"],
                         assign_ms=spec["assign_ms"], metric=spec["metric"])
