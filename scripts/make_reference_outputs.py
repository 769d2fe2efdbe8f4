"""Write tests/fixtures/reference_outputs.json: what every released model outputs on three AN4 test files.

tests/test_reference_outputs.py compares today's code against it, so a refactor that changes any released
model's behaviour fails. Regenerate only when a release changes on purpose:
    python scripts/make_reference_outputs.py
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
FILES = ["an4_clstk/fash/an251-fash-b.wav", "an4test_clstk/fcaw/an406-fcaw-b.wav", "an4test_clstk/mjgm/an436-mjgm-b.wav"]


def data_root() -> Path:
    return Path(os.environ.get("ZOO_DATA", ROOT.parent / "shared" / "data"))


def reference_outputs(names: list[str] | None = None) -> dict:
    import zoo

    torch.manual_seed(0)
    paths = [str(data_root() / "an4" / "wav" / f) for f in FILES]
    out = {}
    for info in zoo.list_models():
        if names is not None and info.name not in names:
            continue
        model = zoo.from_pretrained(info.name)
        if info.task == "speaker":
            emb = model.embed(paths)
            out[info.name] = {"embedding_head": [[round(float(x), 5) for x in e[:8]] for e in emb]}
        elif info.task == "asr":
            out[info.name] = {"greedy": model.transcribe(paths), "beam4": model.transcribe(paths, beam_size=4)}
        else:  # multitalker: the turns of a 2-file concatenation
            import soundfile as sf
            wav = torch.cat([torch.from_numpy(sf.read(p, dtype="float32")[0]) for p in paths[:2]])
            turns = model.transcribe([wav], sample_rate=16000)[0]
            out[info.name] = {"turns": [[str(x) if isinstance(x, float) else x for x in t] for t in
                                        [[getattr(t, f) for f in t._fields] for t in turns]]}
    return out


if __name__ == "__main__":
    names = sys.argv[1:] or None  # names given: only those are (re)computed, the rest is kept
    dest = ROOT / "tests" / "fixtures" / "reference_outputs.json"
    res = {**(json.loads(dest.read_text()) if names and dest.is_file() else {}), **reference_outputs(names)}
    res = dict(sorted(res.items()))
    dest.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {dest} ({len(res)} models)")
