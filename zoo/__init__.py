"""zoo: streaming speech recognition, multi-talker recognition, fair speaker verification and ASR
fairness tooling, as PyTorch Lightning models."""
from zoo._version import __version__  # noqa: E402
from zoo.errors import ZooError  # noqa: E402
from zoo.hub import from_pretrained, list_models, push_to_hub, save_pretrained  # noqa: E402

__all__ = ["__version__", "from_pretrained", "list_models", "push_to_hub", "save_pretrained", "ZooError"]
