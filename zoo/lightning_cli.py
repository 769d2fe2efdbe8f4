"""``zoo fit|validate|test|predict``: Lightning's own CLI over any zoo task and the shared DataModule."""
from __future__ import annotations

import lightning as L
from lightning.pytorch.cli import LightningCLI

from zoo.data import SpeechDataModule


class ZooLightningCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--seed", type=int, default=0, help="global seed (lightning.seed_everything)")

    def before_instantiate_classes(self) -> None:
        cfg = self.config.get(self.subcommand, self.config)
        L.seed_everything(cfg.get("seed", 0), workers=True)


def run(args: list[str] | None = None) -> ZooLightningCLI:
    return ZooLightningCLI(L.LightningModule, SpeechDataModule, subclass_mode_model=True,
                           subclass_mode_data=False, save_config_kwargs={"overwrite": True},
                           seed_everything_default=False, args=args,
                           parser_kwargs={"default_env": False})
