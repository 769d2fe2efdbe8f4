"""Released models and where models come from: the registry of bundled models (``registry``), loading from a
name, folder or Hub id (``folder``), model cards (``cards``) and Lightning-checkpoint export (``export``)."""
from zoo.hub.folder import from_pretrained, push_to_hub, resolve, save_pretrained
from zoo.hub.registry import list_models

__all__ = ["from_pretrained", "list_models", "push_to_hub", "resolve", "save_pretrained"]
