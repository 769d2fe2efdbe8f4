"""Every command in README.md and the model cards runs from shipped files: each repo path it names exists, or an
earlier command of the same code block produces it (a `zoo fit` run folder, an `--out`/`-o`/`--json` target)."""
import re
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted(REPO.glob("checkpoints/*/README.md")), *sorted(REPO.glob("model_cards/*.md"))]
ROOTS = ("configs/", "checkpoints/", "reports/", "scripts/", "benchmarks/", "exp/", "data/", "tests/", "model_cards/")
PATH = re.compile(r"(?<![\w./-])((?:%s)[\w./<>*{}-]*)" % "|".join(re.escape(r) for r in ROOTS))
OUT_FLAGS = ("--out", "-o", "--output", "--json", "--trainer.default_root_dir", "--out-dir", "--root")


def blocks(text: str):
    """(first line number, [command lines]) of each fenced shell block (continuations joined)."""
    lines = text.splitlines()
    fences = [i for i, ln in enumerate(lines) if ln.lstrip().startswith("```")]
    for a, b in zip(fences[::2], fences[1::2]):  # fences pair up in order: opener, closer
        if lines[a].strip()[3:] not in ("", "bash", "sh", "console"):
            continue
        body = "\n".join(lines[a + 1:b]).replace("\\\n", " ").splitlines()
        yield a + 1, [ln.split(" #")[0].strip() for ln in body if ln.strip() and not ln.strip().startswith("#")]


def inline_commands(text: str):
    """(line number, command) of inline code spans outside fences that are commands (zoo / python / bash)."""
    lines, inside = text.splitlines(), False
    prose = []
    for i, ln in enumerate(lines):
        if ln.lstrip().startswith("```"):
            inside = not inside
            continue
        prose.append((i + 1, "" if inside else ln))
    joined = "\n".join(ln for _, ln in prose)
    for m in re.finditer(r"`((?:zoo|python|bash) [^`]+)`", joined, re.S):
        yield joined[:m.start()].count("\n") + 1, " ".join(m.group(1).split())


def produced(cmd: str) -> list[str]:
    """Paths a command writes: its output flags' values, and the run folder of `zoo fit` (from its configs)."""
    toks = cmd.split()
    out = [toks[i + 1] for i, t in enumerate(toks[:-1]) if t in OUT_FLAGS]
    if len(toks) > 1 and toks[0] == "zoo" and toks[1] == "fit":
        for i, t in enumerate(toks[:-1]):
            if t == "--config" and (REPO / toks[i + 1]).is_file():
                cfg = yaml.safe_load((REPO / toks[i + 1]).read_text()) or {}
                root = (cfg.get("trainer") or {}).get("default_root_dir")
                if root:
                    out.append(root)
    if len(toks) > 3 and toks[:2] == ["zoo", "export"]:
        out.append([t for t in toks[2:] if not t.startswith("-")][-1])  # zoo export CKPT... OUT_DIR
    if len(toks) > 3 and toks[1].endswith(("cca_init_from_allon.py", "convrnnt_faithful_init.py")):
        args = [t for i, t in enumerate(toks[2:], 2) if not t.startswith("-") and toks[i - 1] != "--window"]
        out.append(args[1])  # SRC OUT [--window W] [--no-gates]
    if toks and toks[0] == "bash" and "cca_v2_sweep.sh" in cmd:
        out.append(toks[-1] if toks[-1].startswith("exp/") else "exp/cca_v2")
    if toks and toks[0] == "bash" and "sv_seeds.sh" in cmd:
        out.append(toks[-1] if toks[-1].startswith("exp/") else "exp/sv_v2")
    return out


def cases():
    for doc in DOCS:
        for line, cmds in blocks(doc.read_text()):
            made: list[str] = []
            for cmd in cmds:
                own = produced(cmd)  # a command may name what it writes
                for p in PATH.findall(cmd):
                    p = p.rstrip(".,:;)'\"")
                    yield pytest.param(doc, line, cmd, p, made + own, id=f"{doc.relative_to(REPO)}:{line}:{p}")
                made += own
        made = []  # inline commands: in reading order, like one block
        for line, cmd in inline_commands(doc.read_text()):
            own = produced(cmd)
            for p in PATH.findall(cmd):
                p = p.rstrip(".,:;)'\"")
                yield pytest.param(doc, line, cmd, p, made + own, id=f"{doc.relative_to(REPO)}:{line}:{p}")
            made += own


@lru_cache(maxsize=1)
def shipped() -> frozenset:
    """Every tracked file and its parent folders (what a fresh clone has; exp/ runs are not shipped)."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    out = set(files)
    for f in files:
        parts = f.split("/")
        out.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return frozenset(out)


def exists(p: str) -> bool:
    if any(c in p for c in "<>*{}"):  # a pattern: its fixed prefix must exist
        p = re.split(r"[<>*{}]", p)[0].rsplit("/", 1)[0]
    return p.rstrip("/") in shipped()


@pytest.mark.parametrize("doc,line,cmd,path,made", list(cases()))
def test_command_paths_exist_or_are_made_earlier(doc, line, cmd, path, made):
    fixed = re.split(r"[<>*{}]", path)[0]  # a pattern (exp/run_s*/...) matches what starts like it
    ok = exists(path) or any(path == m or path.startswith(m.rstrip("/") + "/")
                             or (fixed != path and m.startswith(fixed)) for m in made)
    assert ok, f"{doc.relative_to(REPO)} (block at line {line}): `{cmd}` names {path}, which is not in the repo " \
               f"and no earlier command of the block writes it"
