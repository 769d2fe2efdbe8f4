"""Training objectives (LightningModules) over the plain nets in ``zoo.nets``."""
from zoo.tasks.transducer import SpecAugment, TransducerTask

__all__ = ["TransducerTask", "SpecAugment"]
