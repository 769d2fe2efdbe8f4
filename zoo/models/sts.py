"""Separator-Transducer-Segmenter (STS; Sklyar et al., Interspeech 2022): streaming recognition and
segmentation of two-party speech in one model.

    audio -> FbankFeaturizer -> mixture encoder (any zoo streaming encoder, e.g. LSTM)
          -> separator: C = 2 channels, each ``sigmoid(W_m h) * (W_p h)`` (a per-channel mask on a
             per-channel projection of the mixture encoding), + a per-channel speech-activity head
          -> shared recognition encoder (a causal zoo encoder at the same frame rate, run on every channel)
          -> shared LSTM predictor + joiner (RNN-T), decoded per channel.

With ``turn_tokens`` each channel's transcript is ``<sot> w1 w2 ... <eot> <sot> ...``: the frames at
which ``<sot>`` / ``<eot>`` are emitted are the turn start / end events. Without (the multi-turn RNN-T
baseline) a channel's transcript is its turns' words only, and a channel's turn ends once no token has
been emitted for ``turn_gap_s`` (the end event is emitted at that moment: last token + gap).

Every part is causal and frame-synchronous, so streaming (:class:`STSStreamingSession`) gives exactly the
turns of :meth:`STSASR.transcribe`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from zoo.errors import ZooError
from zoo.models.base import register_architecture
from zoo.models.decoding import greedy_search, init_greedy_state
from zoo.models.transducer import StreamingSession, TransducerASR
from zoo.nets.separator import SeparatorEncoder
from zoo.text import CharTokenizer

SOT, EOT = "<sot>", "<eot>"
TURN_TOKENS = (SOT, EOT)


class Turn(NamedTuple):
    channel: int
    start: float        # s: when the turn's start was emitted (<sot>, or its first token without turn tokens)
    end: float | None   # s: when its end was emitted (<eot>, or last token + gap); None while still open
    text: str


def sts_tokenizer(turn_tokens: bool = True, vocab: str | None = None) -> CharTokenizer:
    """The char tokenizer of an STS model: + ``<sot>``, ``<eot>`` with turn tokens."""
    vocab = vocab or CharTokenizer().vocab
    return CharTokenizer(vocab, TURN_TOKENS if turn_tokens else ())


@dataclass
class TurnEvent:
    kind: str      # "start" or "end"
    channel: int
    time: float    # s of audio at which the event was emitted
    text: str = ""  # the turn's text (end events)


@dataclass
class STSStreamResult:
    new_text: list[str]                     # per channel: text added by this call
    text: list[str]                         # per channel: everything recognised so far
    events: list[TurnEvent] = field(default_factory=list)  # turn starts / ends emitted by this call
    turns: list[Turn] = field(default_factory=list)        # all turns so far (end None: still open)


@register_architecture("sts", task="multitalker-asr")
class STSASR(TransducerASR[list[Turn], STSStreamResult]):
    """A two-channel streaming recogniser + segmenter over raw audio (architecture ``sts``).

    Args:
        encoder: :class:`SeparatorEncoder` kwargs (``mixture``, ``recognition``, ``channels``).
        predictor, joiner, featurizer: as in :class:`~zoo.models.transducer.TransducerASR` (shared by the channels).
        tokenizer: a CharTokenizer; with ``turn_tokens`` it must have the ``<sot>`` / ``<eot>`` specials.
        turn_tokens: segment by ``<sot>`` / ``<eot>`` (STS) or by token gaps (the baseline).
        turn_gap_s: baseline only: silence (no token) that ends a turn.

    ``transcribe`` returns, per input, a list of :class:`Turn` (channel, start, end, text) in start order.
    """

    card_metadata = {"task_type": "automatic-speech-recognition", "pipeline_tag": "automatic-speech-recognition",
                     "metrics": ["wer", "accuracy"], "tags": ["speech", "asr", "rnnt", "streaming", "multi-talker",
                                                               "segmentation", "lightning"]}

    def __init__(self, encoder: dict | None = None, predictor: dict | None = None, joiner: dict | None = None,
                 featurizer: dict | None = None, tokenizer=None, turn_tokens: bool = True, turn_gap_s: float = 1.0):
        tokenizer = tokenizer or sts_tokenizer(turn_tokens)
        specials = getattr(tokenizer, "specials", [])
        if turn_tokens and not set(TURN_TOKENS) <= set(specials):
            raise ValueError(f"turn_tokens needs a char tokenizer with specials {list(TURN_TOKENS)}")
        self.turn_tokens, self.turn_gap_s = turn_tokens, float(turn_gap_s)
        super().__init__(encoder or {}, predictor, joiner, featurizer, tokenizer)
        self.sot = self.tokenizer.token_id(SOT) if SOT in specials else None
        self.eot = self.tokenizer.token_id(EOT) if EOT in specials else None

    def _build_encoder(self, cfg: dict, input_dim: int) -> SeparatorEncoder:
        return SeparatorEncoder(input_dim, **cfg)

    def format_result(self, result: list[Turn]) -> list[str]:
        """One line per turn: channel, start s, end s, text (tab-separated)."""
        return [f"{t.channel}\t{t.start:.2f}\t{t.end:.2f}\t{t.text}" for t in result]

    def config(self) -> dict:
        return {"featurizer": self.featurizer.config(), "encoder": self.encoder.config(),
                "predictor": self.predictor.config(), "joiner": self.joiner.config(),
                "turn_tokens": self.turn_tokens, "turn_gap_s": self.turn_gap_s}

    @property
    def channels(self) -> int:
        return self.encoder.channels

    def frame_time(self, t: int) -> float:
        """Seconds of audio needed to compute encoder frame ``t`` (its emission time)."""
        f = self.featurizer
        last = (t + 1) * self.encoder.subsampling - 1 + self.encoder.lookahead_frames
        return (last * f.hop + f.win) / f.sample_rate

    # --- tokens -> turns --------------------------------------------------------------------------
    def channel_turns(self, channel: int, tokens: list[int], frames: list[int], end_time: float | None,
                      now: float | None = None) -> list[Turn]:
        """Turns of one channel's decoded tokens (with their frames). ``end_time``: the length of the audio
        when it is complete (open turns close there); None for a partial result, where open turns stay open
        (``now``: the audio time so far, which closes baseline turns whose gap has elapsed)."""
        tok = self.tokenizer
        turns: list[Turn] = []
        if self.turn_tokens:
            cur: list | None = None  # [start, token ids]
            for i, f in zip(tokens, frames):
                t = self.frame_time(f)
                if i == self.sot or (cur is None and i != self.eot):
                    if cur is not None:  # <sot> inside an open turn: the open one ends here
                        turns.append(Turn(channel, cur[0], t, tok.decode(cur[1])))
                    cur = [t, [] if i == self.sot else [i]]
                elif i == self.eot:
                    if cur is not None:
                        turns.append(Turn(channel, cur[0], t, tok.decode(cur[1])))
                    cur = None
                else:
                    assert cur is not None  # the first branch opens a turn for any token outside one
                    cur[1].append(i)
            if cur is not None:
                turns.append(Turn(channel, cur[0], end_time, tok.decode(cur[1])))
            return turns
        groups: list[list] = []  # [first time, last time, token ids]
        for i, f in zip(tokens, frames):
            t = self.frame_time(f)
            if groups and t - groups[-1][1] <= self.turn_gap_s:
                groups[-1][1] = t
                groups[-1][2].append(i)
            else:
                groups.append([t, t, [i]])
        for g0, g1, ids in groups:
            text = tok.decode(ids)
            if text:
                closed_at = g1 + self.turn_gap_s  # the moment the gap has elapsed: the end event
                if end_time is not None:
                    end = min(closed_at, end_time)
                else:
                    end = closed_at if now is not None and closed_at <= now else None
                turns.append(Turn(channel, g0, end, text))
        return turns

    def session_turns(self, hyps: list[list[int]], frames: list[list[int]], end_time: float | None,
                      now: float | None = None) -> list[Turn]:
        """All channels' turns (C token lists) in start order. For partial results pass ``now`` (audio time so
        far): baseline turns whose gap has not elapsed yet stay open."""
        out = []
        for c in range(len(hyps)):
            out += self.channel_turns(c, hyps[c], frames[c], end_time, now)
        return sorted(out, key=lambda t: (t.start, t.channel))

    # --- batch inference ------------------------------------------------------------------------
    def decode_turns(self, enc: torch.Tensor, lengths: torch.Tensor, num_samples: torch.Tensor) -> list[list[Turn]]:
        """Greedy-decode (B * C, T, D) encodings; ``num_samples`` (B,) closes turns still open at the end."""
        st = greedy_search(self, enc, lengths)
        c, out = self.channels, []
        for b in range(enc.shape[0] // c):
            end = float(num_samples[b]) / self.sample_rate
            out.append(self.session_turns(st.hyps[b * c:(b + 1) * c], st.frames[b * c:(b + 1) * c], end))
        return out

    def _transcribe_batch(self, wav: torch.Tensor, lens: torch.Tensor, beam_size: int,
                          **fusion) -> list[list[Turn]]:
        if fusion:
            raise ZooError("STS models decode greedily: no LM fusion")
        if beam_size > 1:
            raise ZooError("STS models decode greedily (turn times come from greedy emissions); drop --beam-size")
        enc, elens = self.encode(wav, lens)
        return self.decode_turns(enc, elens, lens)

    def stream_transcribe(self, wav: torch.Tensor, chunk_ms: float = 160.0) -> list[Turn]:
        """The turns of :meth:`stream_all`."""
        return self.stream_all(wav, chunk_ms).turns

    def stream(self, chunk_ms: float = 160.0) -> "STSStreamingSession":
        return STSStreamingSession(self, chunk_ms)


class STSStreamingSession(StreamingSession[STSStreamResult]):
    """:class:`~zoo.models.transducer.StreamingSession` over the C channels of an :class:`STSASR`: the same
    ``accept_waveform`` / ``finalize`` / ``reset`` API; results carry per-channel text, the turn start / end
    events of this call, and all turns so far. ``finalize().turns`` equals ``transcribe()``."""

    model: STSASR

    def reset(self) -> None:
        super().reset()
        m = self.model
        self._dec = init_greedy_state(m, m.channels, self._device)
        self._texts = [""] * m.channels
        self._n = 0
        self._seen: set = set()
        self._final = False

    def _decode(self, enc: torch.Tensor | None) -> None:
        if enc is not None and enc.shape[1]:
            lens = torch.full((enc.shape[0],), enc.shape[1], device=enc.device)
            greedy_search(self.model, enc, lens, self._dec, frame_offset=self._t)
            self._t += enc.shape[1]

    def accept_waveform(self, wav, sample_rate: int | None = None) -> STSStreamResult:
        self._n += int(torch.as_tensor(wav).numel())
        return super().accept_waveform(wav, sample_rate)

    def finalize(self) -> STSStreamResult:
        self._final = True
        return super().finalize()

    def _result(self) -> STSStreamResult:
        m = self.model
        # decoded so far: up to the last encoder frame (audio still buffered in a partial chunk is not)
        now = m.frame_time(self._t - 1) if self._t else 0.0
        turns = m.session_turns(self._dec.hyps, self._dec.frames, self._n / m.sample_rate if self._final else None,
                                now=now)
        texts = [m.tokenizer.decode(h) for h in self._dec.hyps]
        new = [t[len(o):] if t.startswith(o) else t for t, o in zip(texts, self._texts)]
        self._texts = texts
        events = []
        for t in turns:
            if ("start", t.channel, t.start) not in self._seen:
                self._seen.add(("start", t.channel, t.start))
                events.append(TurnEvent("start", t.channel, t.start))
            if t.end is not None and ("end", t.channel, t.start) not in self._seen:
                self._seen.add(("end", t.channel, t.start))
                events.append(TurnEvent("end", t.channel, t.end, t.text))
        return STSStreamResult(new_text=new, text=texts, events=events, turns=turns)


def warm_start_from_transducer(sts: STSASR, asr: TransducerASR) -> list[str]:
    """Initialise ``sts`` from a single-speaker transducer with an LSTM encoder (e.g. ``lstm-rnnt-an4``), in place.

    The ASR encoder's LSTM layers are split between the STS mixture encoder (first layers, with the input
    LayerNorm) and the recognition encoder (last layers); the separator starts as "each channel = the mixture
    encoding" (projection = identity, mask logits 0 plus small noise); the featurizer (with its statistics),
    predictor and joiner are copied, the rows of tokens the ASR model lacks (``<sot>``, ``<eot>``) keep their
    random init. So at step 0 both channels run the single-speaker recogniser. Returns what was copied.
    """
    mix, rec, src = sts.encoder.mixture, sts.encoder.recognition, asr.encoder
    for enc, what in ((mix, "mixture"), (rec, "recognition"), (src, "ASR")):
        if not hasattr(enc, "lstm"):
            raise ZooError(f"warm start needs LSTM encoders; the {what} encoder is {type(enc).__name__}")
    n_mix, n_rec = mix.lstm.num_layers, rec.lstm.num_layers
    if (src.lstm.num_layers != n_mix + n_rec or src.lstm.hidden_size != mix.lstm.hidden_size
            or rec.lstm.hidden_size != src.lstm.hidden_size or src.subsampling != mix.subsampling
            or rec.subsampling != 1):
        raise ZooError(f"cannot warm-start: the ASR encoder ({src.config()}) must equal the mixture encoder "
                       f"({mix.config()}) followed by the recognition encoder ({rec.config()}) layer for layer; "
                       "set encoder.mixture / encoder.recognition to split it")
    if sts.tokenizer.vocab != asr.tokenizer.vocab:
        raise ZooError("cannot warm-start: the ASR model's characters differ from the STS vocab")
    with torch.no_grad():
        sts.featurizer.load_state_dict(asr.featurizer.state_dict())
        mix.norm.load_state_dict(src.norm.state_dict())
        src_p = dict(src.lstm.named_parameters())
        for name, p in mix.lstm.named_parameters():
            p.copy_(src_p[name])
        for name, p in rec.lstm.named_parameters():  # weight_ih_l0 <- weight_ih_l{n_mix}, ...
            layer = int(name.rsplit("_l", 1)[1])
            p.copy_(src_p[name.rsplit("_l", 1)[0] + f"_l{layer + n_mix}"])
        d, c = mix.output_dim, sts.encoder.channels
        w = sts.encoder.separator.weight.view(c, 2, d, d)
        b = sts.encoder.separator.bias.view(c, 2, d)
        w[:, 0].normal_(0.0, 0.01); b[:, 0].zero_()      # mask logits ~0 -> mask 0.5 (rec. LayerNorm rescales)
        w[:, 1].copy_(torch.eye(d)); b[:, 1].zero_()     # projection = identity
        for dst, srcm in ((sts.predictor, asr.predictor), (sts.joiner, asr.joiner)):
            src_sd = srcm.state_dict()
            for name, p in dst.state_dict().items():
                q = src_sd[name]
                if p.shape == q.shape:
                    p.copy_(q)
                elif p.dim() == q.dim() and p.shape[1:] == q.shape[1:] and p.shape[0] > q.shape[0]:
                    p[: q.shape[0]].copy_(q)  # token rows: the ASR ids are the leading STS ids
                else:
                    raise ZooError(f"cannot warm-start {name}: shape {tuple(q.shape)} vs {tuple(p.shape)}")
    return ["featurizer", f"mixture <- ASR LSTM layers 0-{n_mix - 1}",
            f"recognition <- ASR LSTM layers {n_mix}-{n_mix + n_rec - 1}", "predictor", "joiner"]
