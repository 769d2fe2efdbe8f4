"""RNN-T training objective: torchaudio ``rnnt_loss`` + optional CTC auxiliary loss + SpecAugment."""
from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics.text import CharErrorRate, WordErrorRate

from zoo.models.transducer import TransducerASR
from zoo.nets import SpecAugment
from zoo.tasks.base import ZooTask
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
            the rest is frozen (the CTC head trains only with the encoder).
        optimizer, scheduler: from the CLI config; the scheduler is stepped every optimizer step.
    """

    def __init__(self, encoder: dict | None = None, predictor: dict | None = None, joiner: dict | None = None,
                 featurizer: dict | None = None, tokenizer: dict | None = None, init_from: str | None = None,
                 ctc_weight: float = 0.3, spec_augment: dict | None = None, normalizer: str = "upper",
                 val_beam_size: int = 1, test_beam_size: int = 4, stats_batches: int = 100,
                 compute_weight: float = 0.0, gate_tau: tuple[float, float] = (1.0, 0.1),
                 delayed_start: int = 0, regularizer: dict | None = None, trainable: str | list[str] = "all",
                 optimizer: OptimizerCallable = torch.optim.AdamW, scheduler: LRSchedulerCallable | None = None):
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.init_net(init_from, lambda: TransducerASR(encoder or {"name": "lstm"}, predictor, joiner, featurizer,
                                                       build_tokenizer(tokenizer or {"type": "char"})),
                      TransducerASR, "a transducer ASR model")
        v = self.net.tokenizer.vocab_size
        self.ctc_head = nn.Linear(self.net.encoder.output_dim, v) if ctc_weight > 0 else None
        self.spec_augment = SpecAugment(**spec_augment) if spec_augment is not None else None
        self.regularizer = build_regularizer(regularizer, self.net) if regularizer else None
        self._frozen: set[int] = set_trainable(self.net, trainable, encoder_heads=(self.ctc_head,))
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
        enc, elens = self.net.encode(batch["audio"], batch["audio_lens"])
        return [self.net.tokenizer.decode(h) for h in self.net.decode(enc, elens, self.hparams.test_beam_size)]

    # --- export ---------------------------------------------------------------------------------
    def zoo_config_extra(self) -> dict:
        return {"normalizer": self.hparams.normalizer}
