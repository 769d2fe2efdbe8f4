"""Corpus recipes, manifests and the DataModule. Submodules load on first use: lhotse and Lightning are
slow to import and ``zoo transcribe --manifest`` needs neither."""
import importlib

_EXPORTS = {"an4_cuts": "an4", "an4_speaker_split": "an4", "data_root": "an4", "make_trials": "trials",
            "read_trials": "trials", "write_trials": "trials", "write_sv_data": "trials",
            "AudioBatchDataset": "datamodule", "SpeechDataModule": "datamodule", "load_cuts": "manifest",
            "read_manifest": "manifest", "write_manifest": "manifest"}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"zoo.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'zoo.data' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = list(_EXPORTS)
