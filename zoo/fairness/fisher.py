"""The diagonal (empirical) Fisher information of an ASR model at its released weights θ*, for EWC fine-tuning
(Trinh et al. 2022; the penalty itself is ``zoo.tasks.regularizers.ParameterAnchor``):
``F_i = mean over utterances of (∂ L_RNNT(x, y) / ∂θ_i)²`` with ``L_RNNT = −log p_θ(y | x)`` of one utterance
(per-utterance gradients, not batch gradients: a batch-mean gradient would shrink F by about the batch size),
on the model's original training data, in eval mode (no dropout, no SpecAugment). The CTC auxiliary head is
not part of a released model and is left out. ``zoo fisher`` stores it as ``fisher.safetensors`` beside the
model (same keys as ``model.safetensors``).
"""
from __future__ import annotations

import torch

from zoo.errors import ZooError
from zoo.tasks.regularizers import FISHER_FILE, load_fisher, save_fisher  # noqa: F401  (re-exported)


def fisher_diagonal(task, batches, max_utterances: int = 200, progress: bool = False) -> tuple[dict, int]:
    """(``{param name of task.net: F}``, utterances used) from per-utterance RNN-T loss gradients over
    ``batches`` (dicts of ``SpeechDataModule``) until ``max_utterances``."""
    net = task.net
    params = dict(net.named_parameters())
    acc = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in params.items()}
    modes = {m: m.training for m in task.modules()}
    req = {n: p.requires_grad for n, p in params.items()}
    task.eval()
    for p in params.values():
        p.requires_grad_(True)
    count = 0
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        tid = bar.add_task("fisher", total=max_utterances)
    try:
        for batch in batches:
            for i in range(len(batch["text"])):
                if count >= max_utterances:
                    break
                n = int(batch["audio_lens"][i])
                one = {"audio": batch["audio"][i:i + 1, :n].to(task.device),
                       "audio_lens": batch["audio_lens"][i:i + 1].to(task.device), "text": batch["text"][i:i + 1]}
                net.zero_grad(set_to_none=True)
                _, logs, _, _ = task._forward_loss(one, augment=False)
                logs["rnnt_loss"].backward()
                for name, p in params.items():
                    if p.grad is not None:
                        acc[name] += p.grad.detach().double() ** 2
                count += 1
                if bar is not None:
                    bar.update(tid, advance=1)
            if count >= max_utterances:
                break
    finally:
        if bar is not None:
            bar.stop()
        net.zero_grad(set_to_none=True)
        for m, t in modes.items():
            m.train(t)
        for n, p in params.items():
            p.requires_grad_(req[n])
    if count == 0:
        raise ZooError("no training utterances to estimate the Fisher information from")
    return {n: (a / count).float() for n, a in acc.items()}, count
