"""``zoo list``, ``zoo export`` and ``zoo push``: released models, model folders and the Hub."""
from __future__ import annotations

import sys
from pathlib import Path

from zoo.errors import ZooError


def add_parsers(sub) -> None:
    sub.add_parser("list", help="released models: name, task, params, streaming, headline metric").set_defaults(func=cmd_list)

    e = sub.add_parser("export", help="Lightning checkpoint -> model folder (reloaded to verify)")
    e.add_argument("checkpoint", nargs="+", help="a .ckpt written by zoo fit; several .ckpt files are averaged; "
                   "with --average N: the run's checkpoints folder")
    e.add_argument("out_dir")
    e.add_argument("--average", type=int, default=None, metavar="N",
                   help="average the N best checkpoints (by the run's monitored metric) of the given folder")
    e.add_argument("--name", default=None, help="model name for the card (default: folder name)")
    e.set_defaults(func=cmd_export)

    u = sub.add_parser("push", help="upload a model folder to a Hugging Face Hub repo as one commit")
    u.add_argument("folder")
    u.add_argument("repo_id", help="org/name")
    u.add_argument("--revision", default=None, help="branch to commit to")
    u.add_argument("--private", action="store_true")
    u.set_defaults(func=cmd_push)


def cmd_list(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from zoo.hub.registry import list_models

    table = Table("name", "task", "params", "streaming", "headline metric", "description")
    for m in list_models():
        params = f"{m.params / 1e6:.2f}M" if m.params else "-"
        table.add_row(m.name, m.task, params, "yes" if m.streaming else "no", m.metric or "-", m.description)
    Console(width=200).print(table)
    return 0


def cmd_export(args) -> int:
    from zoo.hub.export import export_checkpoint

    from zoo.hub.export import best_checkpoints

    ckpts = args.checkpoint
    if args.average is not None:
        if len(ckpts) != 1:
            raise ZooError("--average takes one checkpoints folder — give the folder, not files")
        ckpts = best_checkpoints(ckpts[0], args.average)
    out = export_checkpoint(ckpts, args.out_dir, name=args.name)
    what = f"the average of {len(ckpts)} checkpoints" if len(ckpts) > 1 else "the checkpoint"
    print(f"wrote {out} from {what} (reloaded and verified)")
    return 0


def cmd_push(args) -> int:
    from zoo.hub import push_to_hub

    url = push_to_hub(args.folder, args.repo_id, revision=args.revision, private=args.private)
    print(url)
    return 0
