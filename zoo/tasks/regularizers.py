"""Penalties and freezing for fine-tuning from a released model, as pieces of ``TransducerTask``
(elastic weight consolidation, Trinh et al. 2022, and its baselines).

* ``ParameterAnchor``: the penalty ``λ/2 Σ_i F_i (θ_i − θ*_i)²``, with θ* the weights the task starts from
  (``init_from``). ``type: ewc`` takes F (the diagonal Fisher information, ``zoo fisher`` /
  ``zoo.fairness.fisher``) from ``fisher.safetensors``; ``type: l2sp`` is F ≡ 1 (L2-SP). With
  ``normalize: mean`` (default) F is divided by its mean over all weights, so EWC and L2-SP with the same λ
  put the same total stiffness on the weights and differ only in where it goes; ``normalize: none`` uses raw F.
* ``set_trainable``: fine-tune only the encoder (acoustic model) or only the predictor (the RNN-T's internal
  language model), freezing the rest, as in the paper's "AM only" / "LM only" comparisons.

Config (``model.init_args`` of ``zoo.tasks.TransducerTask``)::

    regularizer: {type: ewc, weight: 100.0, fisher: null}   # fisher null: <init_from folder>/fisher.safetensors
    trainable: all                                          # or encoder | predictor | joiner | [predictor, joiner]
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from zoo.errors import ZooError
from zoo.io import atomic_write_bytes

FISHER_FILE = "fisher.safetensors"
PARTS = ("encoder", "predictor", "joiner")


def save_fisher(fisher: dict, path: str | Path, **metadata) -> Path:
    from safetensors.torch import save


    # bfloat16: float32's range (squared gradients span many decades) at half the size beside the model
    data = save({k: v.detach().to(torch.bfloat16).contiguous().cpu() for k, v in fisher.items()},
                metadata={"zoo_fisher": "1", **{k: str(v) for k, v in metadata.items()}})
    return atomic_write_bytes(path, data)


def load_fisher(path: str | Path) -> dict:
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ZooError(f"Fisher file not found: {path} (compute it with `zoo fisher --model MODEL --out {path}`)")
    try:
        return {k: v.float() for k, v in load_file(path).items()}
    except Exception as e:  # safetensors raises its own error types
        raise ZooError(f"{path} is not a valid safetensors file ({e})") from None


class ParameterAnchor(nn.Module):
    """``weight/2 * Σ F_i (θ_i − θ*_i)²`` over the parameters of ``net`` (θ* = their values now).

    ``fisher``: {name: F} for every parameter, or None for F ≡ 1 (L2-SP). Anchors and F are non-persistent
    buffers: they follow the task's device but never enter checkpoints (a resumed run rebuilds them from
    ``init_from``)."""

    def __init__(self, net: nn.Module, weight: float, fisher: dict | None = None, normalize: str = "mean"):
        super().__init__()
        if normalize not in ("mean", "none"):
            raise ValueError(f"regularizer normalize must be 'mean' or 'none' (got {normalize!r})")
        self.weight = float(weight)
        self.names = [n for n, _ in net.named_parameters()]
        if fisher is not None:
            missing = [n for n in self.names if n not in fisher]
            shapes = [n for n in self.names if n in fisher and fisher[n].shape != dict(net.named_parameters())[n].shape]
            if missing or shapes:
                raise ZooError(f"the Fisher file does not match the model: missing {missing[:3]}, "
                               f"shape mismatch {shapes[:3]}; compute it for this model with `zoo fisher`")
            if (min(float(fisher[n].min()) for n in self.names)) < 0:
                raise ZooError("the Fisher file has negative entries; it is not a diagonal Fisher")
            if normalize == "mean":
                total = sum(float(fisher[n].double().sum()) for n in self.names)
                count = sum(fisher[n].numel() for n in self.names)
                if total <= 0:
                    raise ZooError("the Fisher information is all zero; recompute it on training data")
                scale = count / total
            else:
                scale = 1.0
        for i, (n, p) in enumerate(net.named_parameters()):
            self.register_buffer(f"anchor_{i}", p.detach().clone(), persistent=False)
            if fisher is not None:
                self.register_buffer(f"fisher_{i}", (fisher[n].float() * scale).to(p.device), persistent=False)
        self.uses_fisher = fisher is not None

    def forward(self, net: nn.Module) -> torch.Tensor:
        total = None
        for i, (_, p) in enumerate(net.named_parameters()):
            d2 = (p - getattr(self, f"anchor_{i}")) ** 2
            term = (getattr(self, f"fisher_{i}") * d2).sum() if self.uses_fisher else d2.sum()
            total = term if total is None else total + term
        return 0.5 * self.weight * total


def build_regularizer(cfg: dict, net: nn.Module) -> ParameterAnchor:
    """``{type: ewc|l2sp, weight: λ, fisher: path|null, normalize: mean|none}`` -> ParameterAnchor anchored at
    the net's current weights (fisher null: ``fisher.safetensors`` in the folder the net was loaded from)."""
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    weight = float(cfg.pop("weight", 1.0))
    normalize = cfg.pop("normalize", "mean")
    path = cfg.pop("fisher", None)
    if cfg:
        raise ValueError(f"unknown regularizer option(s) {sorted(cfg)}; use type, weight, fisher, normalize")
    if kind == "l2sp":
        return ParameterAnchor(net, weight, None, normalize)
    if kind != "ewc":
        raise ValueError(f"regularizer type must be 'ewc' or 'l2sp' (got {kind!r})")
    if path is None:
        src = getattr(net, "source", None)
        if src is None:
            raise ValueError("regularizer fisher: null needs init_from (the Fisher file is looked up beside the model)")
        path = Path(src) / FISHER_FILE
    return ParameterAnchor(net, weight, load_fisher(path), normalize)


def set_trainable(net: nn.Module, trainable, encoder_heads: tuple = ()) -> set[int]:
    """Freeze every parameter of ``net`` outside the ``trainable`` parts (``"all"``, a part of ``PARTS`` or a
    list of them) and of ``encoder_heads`` (modules on the encoder, e.g. a CTC head) unless the encoder trains;
    returns the ids of the frozen parameters."""
    parts = [trainable] if isinstance(trainable, str) else list(trainable)
    if parts == ["all"]:
        return set()
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise ValueError(f"trainable must be 'all' or some of {list(PARTS)} (got {trainable!r})")
    frozen = [p for name, p in net.named_parameters() if name.split(".")[0] not in parts]
    if "encoder" not in parts:
        frozen += [p for m in encoder_heads if m is not None for p in m.parameters()]
    for p in frozen:
        p.requires_grad_(False)
    return {id(p) for p in frozen}
