"""The streaming-encoder contract shared by every ASR encoder in the zoo."""
from __future__ import annotations

import inspect

import torch
import yaml
from torch import nn


def stack_frames(feats: torch.Tensor, lengths: torch.Tensor, factor: int):
    """(B, T, F) -> (B, T // factor, F * factor); a trailing partial group is dropped."""
    b, t, f = feats.shape
    t2 = t // factor
    out = feats[:, : t2 * factor].reshape(b, t2, f * factor)
    return out, torch.div(lengths, factor, rounding_mode="floor")


class StreamingEncoder(nn.Module):
    """Base class. Subclasses set ``subsampling`` (input frames per output frame),
    ``output_dim`` and ``lookahead_frames`` (future input frames an output frame needs; 0 = causal),
    and implement:

    - ``forward(feats (B, T, F), lengths (B,)) -> (B, T', D), (B,)`` on whole utterances;
    - ``init_state(batch_size, device) -> dict[str, Tensor]``;
    - ``stream_step(feats (B, T, F), state) -> ((B, T // subsampling, D), state)`` where T is a
      multiple of ``subsampling`` (outputs may be held back in the state, e.g. until an attention
      segment is complete);
    - ``stream_flush(state)`` at the end of a stream. Streaming all chunks of an utterance and
      flushing equals ``forward`` on it.
    """

    subsampling: int = 1
    output_dim: int
    lookahead_frames: int = 0

    def config(self) -> dict:  # the kwargs that rebuild this encoder
        raise NotImplementedError

    def init_state(self, batch_size: int, device=None) -> dict:
        raise NotImplementedError

    def stream_step(self, feats: torch.Tensor, state: dict):
        raise NotImplementedError

    def delayed_parameters(self) -> list:
        """Parameters a training task may keep frozen for its first steps (``TransducerTask.delayed_start``),
        e.g. branches added on top of a baseline encoder. Default: none."""
        return []

    def expected_compute(self, lengths: torch.Tensor) -> torch.Tensor | None:
        """Encoders with learned gates: the differentiable expected fraction of their compute that runs in the
        latest ``forward`` (lengths (B,) in output frames), for a compute-cost loss. Default: None (no gates)."""
        return None

    def set_gate_temperature(self, tau: float) -> None:
        """Encoders with learned gates: the Gumbel-sigmoid temperature for training. Default: nothing to set."""

    def stream_flush(self, state: dict):
        """End of stream: outputs still held back (e.g. a partial attention segment) -> (B, T'', D), state.
        Causal frame-synchronous encoders hold nothing back and return (None, state)."""
        return None, state


ENCODERS: dict[str, type[StreamingEncoder]] = {}


def register_encoder(name: str):
    """Class decorator: make an encoder buildable from a config as ``{"name": name, **kwargs}``."""
    def deco(cls):
        if name in ENCODERS and ENCODERS[name] is not cls:
            raise ValueError(f"encoder name {name!r} is taken by {ENCODERS[name].__qualname__}")
        ENCODERS[name] = cls
        return cls
    return deco


def build_encoder(cfg: dict, input_dim: int) -> StreamingEncoder:
    """``{"name": "lstm", **kwargs}`` -> encoder instance."""
    cfg = dict(cfg)
    name = cfg.pop("name", None)
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; known encoders: {sorted(ENCODERS)}")
    cfg.setdefault("input_dim", input_dim)
    return ENCODERS[name](**_coerce(ENCODERS[name], cfg))


def _coerce(cls, cfg: dict) -> dict:
    """Command-line overrides of dict keys (``--model.init_args.encoder.window 8``) arrive as strings: parse
    them as YAML where the constructor's default is a bool, int or float, and insist on that type."""
    params = inspect.signature(cls).parameters
    out = {}
    for k, v in cfg.items():
        default = params[k].default if k in params else None
        if isinstance(v, str) and isinstance(default, (bool, int, float)):
            parsed = yaml.safe_load(v)
            kind = type(default)
            ok = isinstance(parsed, bool) if kind is bool else (
                isinstance(parsed, (int, float)) and not isinstance(parsed, bool)
                and (kind is float or float(parsed).is_integer()))
            if not ok:
                raise ValueError(f"encoder option {k}={v!r}: expected {kind.__name__}")
            v = kind(parsed)
        out[k] = v
    return out
