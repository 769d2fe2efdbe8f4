"""The one manifest validator (``zoo.data.manifest.read_manifest``) and the readers built on it: every bad
manifest is a one-line ManifestError ``path:line: what is wrong — what to do``; no import cycle in zoo.data."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from zoo.data.manifest import iter_manifest, load_cuts, read_manifest, read_mix_manifest
from zoo.errors import ManifestError, ZooError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def wav(tmp_path) -> Path:
    """A 2.0 s 16 kHz tone."""
    p = tmp_path / "a.wav"
    t = np.arange(32000) / 16000
    sf.write(p, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    return p


GOOD = {"audio_filepath": "a.wav", "duration": 1.0, "text": "HELLO"}


def _write(tmp_path, *lines, name="m.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return p


def _error(fn, *args, **kw) -> str:
    with pytest.raises(ManifestError) as e:
        fn(*args, **kw)
    msg = str(e.value)
    assert isinstance(e.value, ZooError) and "\n" not in msg and " — " in msg, msg  # one line: what — what to do
    return msg


# --- the validator ---------------------------------------------------------------------------------------------
def test_good_manifest(tmp_path, wav):
    m = _write(tmp_path, GOOD, "", {"audio_filepath": str(wav), "offset": 0.5, "duration": 1.5, "text": "",
                                    "speaker": "s1"}, {"audio_filepath": "a.wav", "text": None})
    entries = read_manifest(m)
    assert isinstance(entries, list) and [e["_line"] for e in entries] == [1, 3, 4]
    assert all(Path(e["audio_filepath"]) == wav for e in entries)  # relative paths: against the manifest's folder
    assert entries[1]["speaker"] == "s1" and "duration" not in entries[2]
    assert [e["_line"] for e in iter_manifest(m)] == [1, 3, 4]


@pytest.mark.parametrize("line, why", [
    ('{"audio_filepath": "a.wav", "duration": 1.0', "not valid JSON"),
    ('["a.wav", 1.0]', "JSON object with 'audio_filepath'"),
    ({"duration": 1.0, "text": "X"}, "JSON object with 'audio_filepath'"),
    ({"audio_filepath": 3, "duration": 1.0}, "'audio_filepath' must be a non-empty string"),
    ({"audio_filepath": "", "duration": 1.0}, "'audio_filepath' must be a non-empty string"),
    ({"audio_filepath": "a.wav", "duration": "long"}, "'duration' must be a number of seconds"),
    ({"audio_filepath": "a.wav", "duration": True}, "'duration' must be a number of seconds"),
    ({"audio_filepath": "a.wav", "duration": 0}, "'duration' must be a positive, finite number"),
    ({"audio_filepath": "a.wav", "duration": -1.0}, "'duration' must be a positive, finite number"),
    ('{"audio_filepath": "a.wav", "duration": NaN}', "'duration' must be a positive, finite number"),
    ('{"audio_filepath": "a.wav", "duration": Infinity}', "'duration' must be a positive, finite number"),
    ({"audio_filepath": "a.wav", "duration": 1.0, "offset": -1}, "'offset' must be a non-negative number"),
    ({"audio_filepath": "a.wav", "duration": 1.0, "offset": "0"}, "'offset' must be a number of seconds"),
    ('{"audio_filepath": "a.wav", "offset": NaN}', "'offset' must be a non-negative number"),
    ({"audio_filepath": "a.wav", "duration": 1.0, "text": 42}, "'text' must be a string"),
    ({"audio_filepath": "a.wav", "duration": 1.0, "text": ["A"]}, "'text' must be a string"),
    ({"audio_filepath": "missing.wav", "duration": 1.0}, "audio file not found"),
    ({"audio_filepath": "a.wav", "duration": 1.9, "offset": 0.5}, "outside the 2.000 s recording"),
    ({"audio_filepath": "a.wav", "offset": 2.0}, "offset 2.0 s lies outside"),
])
def test_bad_line_names_file_and_line(tmp_path, wav, line, why):
    m = _write(tmp_path, GOOD, "", line)  # the blank line still counts: the bad one is line 3
    msg = _error(read_manifest, m)
    assert msg.startswith(f"{m}:3: ") and why in msg, msg
    assert why in _error(list, iter_manifest(m))


def test_audio_checks_can_be_skipped(tmp_path):
    m = _write(tmp_path, {"audio_filepath": "nowhere.wav", "duration": 9.0, "offset": 100.0})
    assert read_manifest(m, check_audio=False)[0]["offset"] == 100.0
    assert "audio file not found" in _error(read_manifest, m)


def test_unreadable_header_is_left_to_the_loader(tmp_path):
    (tmp_path / "notes.wav").write_text("not audio")  # soundfile cannot read it: no span check, no error here
    m = _write(tmp_path, {"audio_filepath": "notes.wav", "duration": 1.0})
    assert len(read_manifest(m)) == 1
    assert "cannot read" in _error(load_cuts, m)


@pytest.mark.parametrize("content", ["", "\n  \n\n"])
def test_empty_manifest_is_an_error(tmp_path, content):
    m = tmp_path / "empty.jsonl"
    m.write_text(content)
    for fn in (read_manifest, load_cuts):
        msg = _error(fn, m)
        assert msg.startswith(f"{m}: ") and "empty" in msg, msg
    assert "empty" in _error(list, load_cuts(m, lazy=True))


def test_missing_manifest(tmp_path):
    for fn in (read_manifest, load_cuts, read_mix_manifest):
        assert "manifest not found" in _error(fn, tmp_path / "nope.jsonl")


def test_not_utf8_names_the_line(tmp_path, wav):
    m = tmp_path / "latin1.jsonl"
    latin1 = '{"audio_filepath": "a.wav", "text": "caf\xe9"}\n'.encode("latin-1")
    m.write_bytes(json.dumps(GOOD).encode() + b"\n" + latin1)
    msg = _error(read_manifest, m)
    assert msg.startswith(f"{m}:2: not UTF-8") and "0xe9" in msg, msg
    assert "not UTF-8" in _error(load_cuts, m)
    # UTF-8 itself, with or without a byte-order mark, is fine
    m.write_bytes(b"\xef\xbb\xbf" + json.dumps({**GOOD, "text": "café"}, ensure_ascii=False).encode() + b"\n")
    assert read_manifest(m)[0]["text"] == "café"


def test_require_text(tmp_path, wav):
    m = _write(tmp_path, GOOD, {"audio_filepath": "a.wav", "duration": 1.0, "text": ""},
               {"audio_filepath": "a.wav", "duration": 1.0})
    assert len(read_manifest(m)) == 3  # transcription: references are optional
    msg = _error(read_manifest, m, require_text=True)
    assert msg.startswith(f"{m}:3: no 'text'"), msg
    assert len(load_cuts(m)) == 3
    assert _error(load_cuts, m, require_text=True).startswith(f"{m}:3: no 'text'")
    m = _write(tmp_path, GOOD, {"audio_filepath": "a.wav", "duration": 1.0, "text": None})
    assert _error(read_manifest, m, require_text=True).startswith(f"{m}:2: no 'text'")


def test_load_cuts_keeps_its_own_checks(tmp_path, wav):
    assert "'duration' is required" in _error(load_cuts, _write(tmp_path, {"audio_filepath": "a.wav"}))
    m = _write(tmp_path, GOOD, {"audio_filepath": "a.wav", "duration": 1.0, "offset": 1.5})
    msg = _error(load_cuts, m)
    assert msg.startswith(f"{m}:2: ") and "outside the" in msg
    assert "outside the" in _error(list, load_cuts(m, lazy=True))


def test_lhotse_cut_manifest(tmp_path, wav):
    cuts = load_cuts(_write(tmp_path, GOOD, {"audio_filepath": "a.wav", "duration": 1.0}))
    out = tmp_path / "cuts.jsonl.gz"
    cuts.to_file(out)
    assert len(load_cuts(out)) == 2
    msg = _error(load_cuts, out, require_text=True)
    assert msg.startswith(f"{out}:2: ") and "no transcript" in msg
    cuts.subset(first=1).to_file(out)
    assert len(load_cuts(out, require_text=True)) == 1


# --- mixture-session manifests -----------------------------------------------------------------------------------
TURN = {"audio_filepath": "a.wav", "offset": 0.0, "duration": 1.0, "start": 0.0, "speaker": "A", "text": "HI"}


def _session(*turns, **kw):
    return {"id": "s1", "duration": 2.0, "turns": list(turns), **kw}


def test_mix_manifest_reads(tmp_path, wav):
    m = _write(tmp_path, _session(TURN, {**TURN, "speaker": "B", "offset": 1.0, "start": 0.8}))
    (s,) = read_mix_manifest(m)
    assert s.id == "s1" and len(s.tracks) == 2 and s.duration == pytest.approx(1.8)
    assert len(load_cuts(m, require_text=True)) == 1


@pytest.mark.parametrize("session, why", [
    ({"id": "s1", "turns": "A"}, "not a mixture-session line"),
    ({"turns": [TURN]}, "not a mixture-session line"),
    (_session(), "at least one turn"),
    (_session("A"), "turn 1 is not a JSON object"),
    (_session({k: v for k, v in TURN.items() if k != "offset"}), "turn 1: no 'offset'"),
    (_session(TURN, {**TURN, "offset": -0.5}), "turn 2: 'offset' must be a non-negative"),
    (_session({**TURN, "duration": 0}), "turn 1: 'duration' must be a positive"),
    (_session({**TURN, "start": "late"}), "turn 1: 'start' must be a number"),
    (_session({**TURN, "text": 42}), "turn 1: 'text' must be a string"),
    (_session({**TURN, "audio_filepath": "gone.wav"}), "turn 1: audio file not found"),
    (_session({**TURN, "offset": 1.5}), "turn 1: offset 1.5 + duration 1.0 s lies outside"),
])
def test_bad_mix_manifest_lines(tmp_path, wav, session, why):
    m = _write(tmp_path, _session(TURN), session)
    msg = _error(read_mix_manifest, m)
    assert msg.startswith(f"{m}:2") and why in msg, msg


def test_mix_manifest_require_text(tmp_path, wav):
    m = _write(tmp_path, _session({k: v for k, v in TURN.items() if k != "text"}))
    assert len(read_mix_manifest(m)) == 1
    assert "turn 1: no 'text'" in _error(load_cuts, m, require_text=True)


# --- the DataModule's policy ------------------------------------------------------------------------------------
def test_datamodule_requires_text_unless_speaker_labels(tmp_path, wav):
    from zoo.data import SpeechDataModule

    m = _write(tmp_path, GOOD, {"audio_filepath": "a.wav", "duration": 1.0, "speaker": "s1"})
    dm = SpeechDataModule(corpus=None, train_manifest=str(m))
    with pytest.raises(ManifestError, match=rf"{m}:2: no 'text'"):
        dm.setup("fit")
    for kw in ({"speaker_labels": True}, {"require_text": False}):
        dm = SpeechDataModule(corpus=None, train_manifest=str(m), **kw)
        dm.setup("fit")
        assert len(dm.cuts["train"]) == 2


# --- layering ----------------------------------------------------------------------------------------------------
def _zoo_imports(path: Path) -> set[str]:
    """Every zoo module a file imports, at the top or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("zoo"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("zoo")}
    return out


def test_manifest_is_the_lower_layer():
    data = REPO / "zoo" / "data"
    assert not {m for m in _zoo_imports(data / "manifest.py") if m.startswith("zoo.data")}
    assert "zoo.data.manifest" in _zoo_imports(data / "mix.py")


def test_reading_a_manifest_needs_no_lhotse(tmp_path, wav):
    m = _write(tmp_path, GOOD)
    code = ("import sys; from zoo.data.manifest import read_manifest; "
            f"assert len(read_manifest({str(m)!r}, require_text=True)) == 1; "
            "print(sorted(k for k in ('lhotse', 'lightning') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
