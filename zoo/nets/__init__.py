"""Plain ``nn.Module`` networks. Encoders register themselves (``@register_encoder``) in ``ENCODERS``;
importing this package imports every net so the table is complete."""
from zoo.nets.augment import SpecAugment
from zoo.nets.cca_transformer import CCATransformerEncoder
from zoo.nets.convrnnt import ConvRNNTEncoder
from zoo.nets.ecapa import ECAPATDNN
from zoo.nets.emformer import EmformerEncoder
from zoo.nets.encoder import ENCODERS, StreamingEncoder, build_encoder, register_encoder
from zoo.nets.featurizer import FbankFeaturizer
from zoo.nets.lstm import LSTMEncoder
from zoo.nets.separator import SeparatorEncoder
from zoo.nets.transducer import Joiner, LSTMPredictor

__all__ = ["ENCODERS", "build_encoder", "register_encoder", "FbankFeaturizer", "SpecAugment", "LSTMEncoder",
           "ConvRNNTEncoder", "EmformerEncoder", "CCATransformerEncoder", "SeparatorEncoder", "ECAPATDNN",
           "LSTMPredictor", "Joiner", "StreamingEncoder"]
