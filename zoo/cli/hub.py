"""``zoo list``, ``zoo export`` and ``zoo push``: released models, model folders and the Hub."""
from __future__ import annotations

from zoo.errors import ZooError


def add_parsers(sub) -> None:
    ls = sub.add_parser("list", help="released models: name, task, params, streaming, headline metric")
    ls.add_argument("--long", action="store_true", help="also each model's description")
    ls.set_defaults(func=cmd_list)

    e = sub.add_parser("export", help="Lightning checkpoint -> model folder (reloaded to verify)")
    e.add_argument("checkpoint", nargs="+", help="a .ckpt written by zoo fit; several .ckpt files are averaged; "
                   "with --average N: the run's checkpoints folder")
    e.add_argument("out_dir", help="new model folder (an existing one is only replaced with --force)")
    e.add_argument("--average", type=int, default=None, metavar="N",
                   help="average the N best checkpoints (by the run's monitored metric) of the given folder")
    e.add_argument("--name", default=None, help="model name for the card (default: folder name)")
    e.add_argument("--force", action="store_true", help="replace an existing model folder OUT_DIR (wholesale: "
                   "files the export does not write are deleted)")
    e.set_defaults(func=cmd_export)

    u = sub.add_parser("push", help="upload a model folder to a Hugging Face Hub repo as one commit")
    u.add_argument("folder", help="model folder (config.json, model.safetensors, README.md)")
    u.add_argument("repo_id", help="org/name")
    u.add_argument("--revision", default=None, help="branch to commit to")
    u.add_argument("--private", action="store_true", help="create the repo as private")
    u.set_defaults(func=cmd_push)


def cmd_list(args) -> int:
    import shutil
    import textwrap

    from zoo.hub.registry import list_models

    # fits the terminal ($COLUMNS; 80 columns when piped): the metric (and --long description) wraps
    width = max(60, shutil.get_terminal_size((80, 24)).columns)
    rows = [("name", "task", "params", "stream", "headline metric")]
    models = list_models()
    for m in models:
        params = f"{m.params / 1e6:.2f}M" if m.params else "-"
        rows.append((m.name, m.task, params, "yes" if m.streaming else "no", m.metric or "-"))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    left = sum(w) + 2 * 4
    room = max(16, width - left)
    for j, r in enumerate(rows):
        head = "  ".join(c.rjust(w[i]) if i == 2 else c.ljust(w[i]) for i, c in enumerate(r[:4]))
        metric = textwrap.wrap(r[4], room) or [""]
        print(f"{head}  {metric[0]}".rstrip())
        for more in metric[1:]:
            print(" " * left + more)
        if args.long and j:
            for line in textwrap.wrap(models[j - 1].description, width - 4):
                print("    " + line)
    return 0


def cmd_export(args) -> int:
    from zoo.hub.export import best_checkpoints, export_checkpoint

    ckpts = args.checkpoint
    if args.average is not None:
        if len(ckpts) != 1:
            raise ZooError("--average takes one checkpoints folder — give the folder, not files")
        ckpts = best_checkpoints(ckpts[0], args.average)
    out = export_checkpoint(ckpts, args.out_dir, name=args.name, force=args.force)
    what = f"the average of {len(ckpts)} checkpoints" if len(ckpts) > 1 else "the checkpoint"
    print(f"wrote {out} from {what} (reloaded and verified)")
    return 0


def cmd_push(args) -> int:
    from zoo.hub import push_to_hub

    url = push_to_hub(args.folder, args.repo_id, revision=args.revision, private=args.private)
    print(url)
    return 0
