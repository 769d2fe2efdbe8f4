"""Plain ``nn.Module`` networks. ``ENCODERS`` names every encoder a config may ask for."""
import inspect

import yaml

from zoo.nets.encoder import StreamingEncoder
from zoo.nets.featurizer import FbankFeaturizer
from zoo.nets.cca_transformer import CCATransformerEncoder
from zoo.nets.convrnnt import ConvRNNTEncoder
from zoo.nets.emformer import EmformerEncoder
from zoo.nets.lstm import LSTMEncoder
from zoo.nets.transducer import Joiner, LSTMPredictor

ENCODERS: dict[str, type[StreamingEncoder]] = {"lstm": LSTMEncoder, "convrnnt": ConvRNNTEncoder,
                                                "emformer": EmformerEncoder, "cca_transformer": CCATransformerEncoder}


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


__all__ = ["ENCODERS", "build_encoder", "FbankFeaturizer", "LSTMEncoder", "ConvRNNTEncoder", "EmformerEncoder", "CCATransformerEncoder", "LSTMPredictor", "Joiner", "StreamingEncoder"]
