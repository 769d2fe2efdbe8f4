"""Training objectives (LightningModules) over the plain nets in ``zoo.nets``."""
from zoo.tasks.arw import ARWTask
from zoo.tasks.speaker_verification import SpeakerVerificationTask
from zoo.tasks.sts import STSTask
from zoo.tasks.transducer import TransducerTask

__all__ = ["TransducerTask", "SpeakerVerificationTask", "ARWTask", "STSTask"]
