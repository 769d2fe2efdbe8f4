from zoo.data.an4 import an4_cuts, data_root
from zoo.data.datamodule import AudioBatchDataset, SpeechDataModule
from zoo.data.manifest import load_cuts, read_manifest, write_manifest

__all__ = ["an4_cuts", "data_root", "AudioBatchDataset", "SpeechDataModule", "load_cuts", "read_manifest",
           "write_manifest"]
