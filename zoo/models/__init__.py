"""Inference models over raw audio (what ``zoo.from_pretrained`` returns), all :class:`ZooModel` subclasses:
ASR (:class:`TransducerASR`), two-speaker ASR + segmentation (:class:`STSASR`), speaker embeddings
(:class:`SpeakerEmbedder`); decoding lives in ``decoding``."""
from zoo.models.base import ARCHITECTURES, ZooModel, load_folder, register_architecture
from zoo.models.speaker import SpeakerEmbedder
from zoo.models.sts import STSASR, Turn
from zoo.models.transducer import TransducerASR

__all__ = ["ARCHITECTURES", "ZooModel", "load_folder", "register_architecture", "SpeakerEmbedder", "STSASR", "Turn",
           "TransducerASR"]
