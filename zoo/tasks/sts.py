"""Training objective of the Separator-Transducer-Segmenter (:class:`~zoo.models.sts.STSASR`).

Per session (a batch item with ``turns`` from the DataModule's ``mix`` option):

* **Channel targets.** Turns are assigned to the C output channels by overlap (:func:`assign_channels`):
  in start order, a turn takes the first free channel (the one whose last turn has ended), so
  non-overlapping speech stays on channel 0 and an overlapping turn goes to channel 1. A channel's target
  is its turns in order, each ``<sot> words <eot>`` with turn tokens, or the words alone (the baseline).
* **RNN-T loss** per channel (torchaudio ``rnnt_loss`` on log-probabilities), summed over channels,
  averaged over sessions.
* **FastEmit** (Yu et al., ICASSP 2021) in its gradient form: the gradient of the RNN-T loss w.r.t. every
  label-emission log-probability ``log P(y_{u+1} | t, u)`` is scaled by ``(1 + fastemit_lambda)`` while the
  blank gradients are unchanged (NeMo / ESPnet ``fastemit_lambda``). Implemented without a custom kernel:
  the loss is evaluated on ``lp + lambda * (lp - lp.detach()) * label_mask`` (same value, gradient scaled on
  exactly the label-emission entries), which is the loss-level formulation of the same regulariser.
* **Speech activity**: BCE between the separator's per-channel activity logits and the reference
  activity of that channel's turns at the encoder frame rate (frame centre inside a turn), weight
  ``activity_weight``.
* **End-of-turn latency penalty** (training only): in the RNN-T lattice, the log-probability of emitting
  the k-th ``<eot>`` of a channel at frame t is lowered by ``eot_penalty * max(0, t_emit - end_k - eot_tolerance)``
  (``t_emit``: the frame's emission time in s, ``end_k``: the reference end of that turn). Alignments that
  end turns late then score lower, so the loss moves ``<eot>`` mass towards the reference end (a per-token
  version of the RNN-T endpointer's late penalty / k2's ``delay_penalty``). The logged training RNN-T loss
  includes the penalty; validation losses do not.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
import torchaudio
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from zoo.errors import ZooError
from zoo.metrics.multitalker import cpwer, emission_latency, orcwer, turn_counting_accuracy
from zoo.models.sts import EOT, SOT, STSASR, sts_tokenizer, warm_start_from_transducer
from zoo.models.transducer import TransducerASR
from zoo.nets import SpecAugment
from zoo.tasks.base import ZooTask, pretrained_net
from zoo.text import get_normalizer


def assign_channels(turns: Sequence, channels: int = 2) -> list[int]:
    """Channel of each turn (``(speaker, start, end, text)``, any order) by overlap: in start order a turn
    takes the lowest-numbered channel that is free at its start; if none is, the one that frees first."""
    free_at = [float("-inf")] * channels
    out = [0] * len(turns)
    for i in sorted(range(len(turns)), key=lambda i: (float(turns[i][1]), float(turns[i][2]))):
        start, end = float(turns[i][1]), float(turns[i][2])
        free = [c for c in range(channels) if free_at[c] <= start + 1e-9]
        c = free[0] if free else min(range(channels), key=lambda c: free_at[c])
        out[i] = c
        free_at[c] = max(free_at[c], end)
    return out


class STSTask(ZooTask):
    """Trains an :class:`~zoo.models.sts.STSASR` on two-speaker sessions (``data.mix`` in the config).

    Args:
        encoder, predictor, joiner, featurizer: the net's config (see ``STSASR``).
        vocab: characters of the tokenizer (``<sot>`` / ``<eot>`` are added with ``turn_tokens``).
        turn_tokens: STS (true) or the multi-turn RNN-T baseline without turn tokens (false).
        turn_gap_s: baseline segmentation gap (see ``STSASR``).
        init_from: start from a zoo STS model (name, folder or Hub id).
        asr_init: warm start from a single-speaker zoo transducer with an LSTM encoder (name, folder or Hub id,
            e.g. ``lstm-rnnt-an4``): see :func:`zoo.models.sts.warm_start_from_transducer`. Our choice, so that
            the CPU budget is spent on separation and turns rather than on the all-blank plateau of RNN-T.
        fastemit_lambda: FastEmit lambda (0 disables it).
        activity_weight: weight of the speech-activity BCE (0 disables it).
        eot_penalty, eot_tolerance: end-of-turn latency penalty per second late, and the lateness it forgives (s).
        spec_augment: SpecAugment kwargs or null. normalizer: text normaliser of targets and metrics.
        stats_batches: training batches for the featurizer statistics (from scratch).
        optimizer, scheduler: from the CLI config; the scheduler steps every optimizer step.
    """

    def __init__(self, encoder: dict | None = None, predictor: dict | None = None, joiner: dict | None = None,
                 featurizer: dict | None = None, vocab: str | None = None, turn_tokens: bool = True,
                 turn_gap_s: float = 1.0, init_from: str | None = None, asr_init: str | None = None,
                 fastemit_lambda: float = 0.01,
                 activity_weight: float = 0.2, eot_penalty: float = 1.0, eot_tolerance: float = 0.2,
                 spec_augment: dict | None = None, normalizer: str = "upper", stats_batches: int = 50,
                 optimizer: OptimizerCallable = torch.optim.AdamW, scheduler: LRSchedulerCallable | None = None):
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        if init_from and asr_init:
            raise ZooError("give init_from (an STS model) or asr_init (a single-speaker transducer to warm-start "
                           "from), not both")
        self.init_net(init_from, lambda: STSASR(encoder, predictor, joiner, featurizer,
                                                sts_tokenizer(turn_tokens, vocab), turn_tokens=turn_tokens,
                                                turn_gap_s=turn_gap_s),
                      STSASR, "an STS model")
        if asr_init:
            warm_start_from_transducer(self.net, pretrained_net(asr_init, TransducerASR, "a transducer ASR model"))
            self.stats_ready = True  # the featurizer statistics come with the ASR model
        self.spec_augment = SpecAugment(**spec_augment) if spec_augment is not None else None
        self.normalize = get_normalizer(normalizer)
        self._eval: dict[str, tuple[list, list]] = {}

    # --- targets --------------------------------------------------------------------------------
    def frame_centres(self, num_frames: int) -> torch.Tensor:
        """(T,) centre times (s) of encoder frames."""
        f, k = self.net.featurizer, self.net.encoder.subsampling
        t = torch.arange(num_frames, dtype=torch.float32)
        return ((t * k + (k - 1) / 2) * f.hop + f.win / 2) / f.sample_rate

    def targets(self, sessions: Sequence[Sequence], num_frames: int):
        """-> tokens (B*C, U) long, lengths (B*C,), activity (B, C, T) float, eot_ends: per row, the reference
        end time of each ``<eot>`` as a list of (target position, end s)."""
        net, c = self.net, self.net.channels
        tok = net.tokenizer
        rows: list[list[int]] = []
        eots: list[list[tuple[int, float]]] = []
        centres = self.frame_centres(num_frames)
        act = torch.zeros(len(sessions), c, num_frames)
        for b, turns in enumerate(sessions):
            ch = assign_channels(turns, c)
            per = [[] for _ in range(c)]
            ends: list[list[tuple[int, float]]] = [[] for _ in range(c)]
            order = sorted(range(len(turns)), key=lambda i: (float(turns[i][1]), float(turns[i][2])))
            for i in order:
                _, start, end, text = turns[i][:4]
                ids = tok.encode(self.normalize(text or ""))
                if net.turn_tokens:
                    ids = [tok.token_id(SOT)] + ids + [tok.token_id(EOT)]
                elif per[ch[i]]:
                    ids = tok.encode(" ") + ids
                per[ch[i]] += ids
                if net.turn_tokens:
                    ends[ch[i]].append((len(per[ch[i]]) - 1, float(end)))
                inside = (centres >= float(start)) & (centres < float(end))
                act[b, ch[i]] = torch.maximum(act[b, ch[i]], inside.float())
            rows += per
            eots += ends
        y = torch.nn.utils.rnn.pad_sequence([torch.tensor(r, dtype=torch.long) for r in rows], batch_first=True)
        lens = torch.tensor([len(r) for r in rows], dtype=torch.long)
        return y.to(self.device), lens.to(self.device), act.to(self.device), eots

    # --- losses ---------------------------------------------------------------------------------
    def eot_penalty_lattice(self, eots, num_frames: int, u1: int) -> torch.Tensor | None:
        """(N, T, U+1) penalty on emitting each ``<eot>`` late (see module doc), or None."""
        h = self.hparams
        if not (self.net.turn_tokens and h.eot_penalty > 0):
            return None
        emit = torch.tensor([self.net.frame_time(t) for t in range(num_frames)], device=self.device)
        pen = torch.zeros(len(eots), num_frames, u1, device=self.device)
        for n, ends in enumerate(eots):
            for pos, end in ends:
                pen[n, :, pos] = h.eot_penalty * (emit - end - h.eot_tolerance).clamp_min(0)
        return pen

    def rnnt_loss(self, logits, y, elens, ylens, eots=None, fastemit_lambda: float = 0.0) -> torch.Tensor:
        """Summed RNN-T loss of (N, T, U+1, V) joiner logits, with the ``<eot>`` latency penalty (``eots``)
        and FastEmit (``fastemit_lambda``) as in the module doc."""
        lp = logits.float().log_softmax(-1)
        if eots is not None:
            pen = self.eot_penalty_lattice(eots, lp.shape[1], lp.shape[2])
            if pen is not None:
                lp = lp - pen.unsqueeze(-1) * F.one_hot(torch.tensor(self.net.eot, device=lp.device), lp.shape[-1])
        if fastemit_lambda > 0 and y.shape[1]:
            u = torch.arange(lp.shape[2] - 1, device=lp.device)
            label = F.one_hot(y, lp.shape[-1]).float() * (u[None] < ylens[:, None]).unsqueeze(-1).float()
            label = F.pad(label, (0, 0, 0, 1))  # (N, U+1, V): no label at u = U
            lp = lp + fastemit_lambda * (lp - lp.detach()) * label.unsqueeze(1)
        return torchaudio.functional.rnnt_loss(lp, y.int(), elens.int(), ylens.int(), blank=0,
                                               fused_log_softmax=False, reduction="sum")

    def forward_loss(self, batch, train: bool):
        net, h = self.net, self.hparams
        feats, flens = net.featurizer(batch["audio"], batch["audio_lens"])
        if train and self.spec_augment is not None:
            feats = self.spec_augment(feats)
        enc, elens, act_logits = net.encoder.forward_all(feats, flens)
        y, ylens, act, eots = self.targets(batch["turns"], enc.shape[1])
        logits = net.joiner(enc.unsqueeze(2), net.predictor(y).unsqueeze(1))  # (B*C, T, U+1, V)
        b = batch["audio"].shape[0]
        rnnt = self.rnnt_loss(logits, y, elens, ylens, eots if train else None,
                              h.fastemit_lambda if train else 0.0) / b
        valid = (torch.arange(enc.shape[1], device=self.device)[None] < elens.view(b, -1)[:, :1]).unsqueeze(1)
        bce = F.binary_cross_entropy_with_logits(act_logits, act, reduction="none")
        activity = (bce * valid).sum() / valid.expand_as(bce).sum().clamp_min(1)
        loss = rnnt + h.activity_weight * activity
        return loss, {"rnnt_loss": rnnt.detach(), "activity_loss": activity.detach()}, enc, elens

    def training_step(self, batch, batch_idx):
        loss, logs, _, _ = self.forward_loss(batch, train=True)
        bs = batch["audio"].shape[0]
        self.log("train_loss", loss, prog_bar=True, batch_size=bs)
        self.log_dict({f"train_{k}": v for k, v in logs.items()}, batch_size=bs)
        return loss

    # --- evaluation -----------------------------------------------------------------------------
    def _eval_step(self, batch, stage: str):
        loss, logs, enc, elens = self.forward_loss(batch, train=False)
        hyps = self.net.decode_turns(enc, elens, batch["audio_lens"])
        norm = self.normalize
        refs, hs = self._eval.setdefault(stage, ([], []))
        refs += [[(t[0], float(t[1]), float(t[2]), norm(t[3])) for t in turns] for turns in batch["turns"]]
        hs += [[(t.channel, t.start, t.end, norm(t.text)) for t in turns] for turns in hyps]
        bs = batch["audio"].shape[0]
        self.log(f"{stage}_loss", loss, batch_size=bs, sync_dist=True)
        self.log(f"{stage}_activity_loss", logs["activity_loss"], batch_size=bs, sync_dist=True)

    def _eval_epoch_end(self, stage: str):
        refs, hyps = self._eval.pop(stage, ([], []))
        if not refs:
            return
        lat = emission_latency(refs, hyps)
        metrics = {f"{stage}_cpwer": cpwer(refs, hyps)["wer"], f"{stage}_orcwer": orcwer(refs, hyps)["wer"],
                   f"{stage}_turn_acc": turn_counting_accuracy(refs, hyps),
                   f"{stage}_eot_latency_ms": lat["end"]["median"], f"{stage}_sot_latency_ms": lat["start"]["median"]}
        self.log_dict({k: float(v) for k, v in metrics.items()}, prog_bar=stage == "val")

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self):
        self._eval_epoch_end("val")

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def on_test_epoch_end(self):
        self._eval_epoch_end("test")

    # --- export ---------------------------------------------------------------------------------
    def zoo_config_extra(self) -> dict:
        return {"normalizer": self.hparams.normalizer}
