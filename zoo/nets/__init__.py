"""Plain ``nn.Module`` networks. ``ENCODERS`` names every encoder a config may ask for."""
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
    return ENCODERS[name](**cfg)


__all__ = ["ENCODERS", "build_encoder", "FbankFeaturizer", "LSTMEncoder", "ConvRNNTEncoder", "EmformerEncoder", "CCATransformerEncoder", "LSTMPredictor", "Joiner", "StreamingEncoder"]
