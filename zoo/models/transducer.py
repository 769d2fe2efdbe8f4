"""``TransducerASR``: featurizer + streaming encoder + predictor + joiner + tokenizer, with
``transcribe()`` and ``stream()``. This is what ``zoo.from_pretrained`` returns for ASR models."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Sequence, cast

import torch
from typing_extensions import TypeVar

from zoo.errors import ZooError
from zoo.models.base import ZooModel, register_architecture
from zoo.models.decoding import GreedyState, beam_search, greedy_search, init_greedy_state
from zoo.nets import FbankFeaturizer, Joiner, LSTMPredictor, build_encoder
from zoo.text import CharTokenizer


@dataclass
class StreamResult:
    new_text: str  # text added by this call (may be ""); previous text + new_text == text
    text: str      # everything recognised so far


# The two result types of a transducer model (static typing only; defaults: the plain text recogniser).
# Subclasses with richer results (e.g. ``STSASR``: turns) parametrize ``TransducerASR[OutputT, StreamResultT]``
# and override the methods that build them (``_transcribe_batch``, ``stream_transcribe``, ``stream`` and their
# session's ``_result``).
OutputT = TypeVar("OutputT", default=str)
"""One input's result of ``transcribe`` / ``stream_transcribe`` (text here)."""
StreamResultT = TypeVar("StreamResultT", default=StreamResult)
"""What a streaming session's ``accept_waveform`` / ``finalize`` return (``StreamResult`` here)."""


@register_architecture("transducer", task="asr")
class TransducerASR(ZooModel, Generic[OutputT, StreamResultT]):
    """An RNN-T speech recogniser over raw audio.

    Args:
        encoder: ``{"name": <ENCODERS key>, **kwargs}``.
        predictor, joiner, featurizer: kwargs of LSTMPredictor, Joiner, FbankFeaturizer.
        tokenizer: a CharTokenizer / SentencePieceTokenizer (not a module; saved beside the weights).
    """

    card_metadata = {"task_type": "automatic-speech-recognition", "pipeline_tag": "automatic-speech-recognition",
                     "metrics": ["wer", "cer"], "tags": ["speech", "asr", "rnnt", "streaming", "lightning"]}

    def __init__(self, encoder: dict, predictor: dict | None = None, joiner: dict | None = None,
                 featurizer: dict | None = None, tokenizer=None):
        super().__init__()
        self.tokenizer = tokenizer or CharTokenizer()
        v = self.tokenizer.vocab_size
        self.featurizer = FbankFeaturizer(**(featurizer or {}))
        self.encoder = self._build_encoder(encoder, self.featurizer.dim)
        self.predictor = LSTMPredictor(v, **(predictor or {}))
        self.joiner = Joiner(self.encoder.output_dim, self.predictor.output_dim, v, **(joiner or {}))

    def _build_encoder(self, cfg: dict, input_dim: int):
        """The encoder from its config (subclasses with another encoder family override this)."""
        self._encoder_name = cfg["name"]
        return build_encoder(cfg, input_dim)

    # --- config ---------------------------------------------------------------------------------
    def config(self) -> dict:
        return {"featurizer": self.featurizer.config(),
                "encoder": {"name": self._encoder_name, **self.encoder.config()},
                "predictor": self.predictor.config(), "joiner": self.joiner.config()}

    @property
    def frame_ms(self) -> float:
        """Encoder output frame shift in ms."""
        return self.featurizer.hop * self.encoder.subsampling * 1000 / self.sample_rate

    def streaming_info(self, chunk_ms: float = 160.0) -> dict:
        """Algorithmic latency = chunk + analysis-window look-ahead + encoder look-ahead."""
        win_ms = (self.featurizer.win - self.featurizer.hop) * 1000 / self.sample_rate
        la_ms = self.encoder.lookahead_frames * self.featurizer.hop * 1000 / self.sample_rate
        return {"supported": True, "frame_ms": self.frame_ms, "chunk_ms": chunk_ms,
                "algorithmic_latency_ms": chunk_ms + win_ms + la_ms}

    # --- batch inference ------------------------------------------------------------------------
    def encode(self, wav: torch.Tensor, lengths: torch.Tensor):
        """(B, S) audio, (B,) sample counts -> (B, T', D) encoder output, (B,) frame counts."""
        feats, flens = self.featurizer(wav, lengths)
        return self.encoder(feats, flens)

    def decode(self, enc: torch.Tensor, lengths: torch.Tensor, beam_size: int = 1, lm=None,
               lm_weight: float = 0.0, length_bonus: float = 0.0) -> list[list[int]]:
        """Token ids per utterance: greedy for ``beam_size`` 1 without fusion, else modified beam search
        (shallow fusion with ``lm`` at ``lm_weight`` and ``length_bonus`` per token; see ``beam_search``)."""
        fused = (lm is not None and lm_weight != 0.0) or length_bonus != 0.0
        if beam_size <= 1 and not fused:
            return greedy_search(self, enc, lengths).hyps
        return [beam_search(self, enc[i], int(lengths[i]), beam_size, lm=lm, lm_weight=lm_weight,
                            length_bonus=length_bonus) for i in range(enc.shape[0])]

    @torch.inference_mode()
    def transcribe(self, inputs: Sequence | str | torch.Tensor, sample_rate: int | None = None,
                   batch_size: int = 8, beam_size: int = 1, progress: bool = False, lm=None,
                   lm_weight: float = 0.0, length_bonus: float = 0.0) -> list[OutputT]:
        """Transcribe audio files (paths) or waveforms ((S,) or (C, S) with ``sample_rate``).

        Returns one string per input, in order. ``lm`` (a ``zoo.models.lm.CharNgramLM`` over this model's
        characters), ``lm_weight`` and ``length_bonus``: shallow fusion in beam search (defaults: none).
        """
        if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
            raise ZooError(f"beam_size must be a whole number >= 1 (1 = greedy; got {beam_size!r})")
        fusion: dict = {}
        if lm is not None or lm_weight or length_bonus:
            if lm is None and lm_weight:
                raise ZooError("lm_weight needs an lm")
            if type(self)._transcribe_batch is not TransducerASR._transcribe_batch:
                raise ZooError(f"LM fusion is not supported by {type(self).__name__}")
            if lm is not None and getattr(lm, "vocab", None) != getattr(self.tokenizer, "vocab", None):
                raise ZooError("the LM's character vocabulary differs from the model's tokenizer")
            fusion = {"lm": lm, "lm_weight": float(lm_weight), "length_bonus": float(length_bonus)}
        return self.map_batches(inputs, sample_rate, batch_size,
                                lambda wav, lens: self._transcribe_batch(wav, lens, beam_size, **fusion),
                                progress=progress, description="transcribing")

    def _transcribe_batch(self, wav: torch.Tensor, lens: torch.Tensor, beam_size: int,
                          **fusion) -> list[OutputT]:
        """One padded batch (B, S) -> B outputs (here texts; subclasses may return richer results)."""
        enc, elens = self.encode(wav, lens)
        texts = [self.tokenizer.decode(toks) for toks in self.decode(enc, elens, beam_size, **fusion)]
        return cast(list[OutputT], texts)  # OutputT is str unless a subclass overrides this method

    def stream_all(self, wav: torch.Tensor, chunk_ms: float = 160.0) -> StreamResultT:
        """Push a whole (S,) waveform at the model's rate through a fresh session, chunk by chunk; the final
        result of the session (``StreamResult``, or the subclass's)."""
        s = self.stream(chunk_ms=chunk_ms)
        for i in range(0, wav.numel(), s.chunk):
            s.accept_waveform(wav[i:i + s.chunk])
        return s.finalize()

    def stream_transcribe(self, wav: torch.Tensor, chunk_ms: float = 160.0) -> OutputT:
        """The text of :meth:`stream_all`."""
        result = self.stream_all(wav, chunk_ms)
        assert isinstance(result, StreamResult)  # subclasses with other stream results override this method
        return cast(OutputT, result.text)  # OutputT is str unless a subclass overrides this method

    def stream(self, chunk_ms: float = 160.0) -> StreamingSession[StreamResultT]:
        """A streaming session (greedy search) that accepts audio of any length at a time."""
        return StreamingSession(self, chunk_ms)


class StreamingSession(Generic[StreamResultT]):
    """Chunk-by-chunk recognition over ``encoder.stream_step``; equals ``transcribe()`` (greedy).

    Audio is cut into ``chunk_ms`` chunks; each complete chunk is featurized, encoded and decoded.
    ``finalize()`` flushes the last partial chunk. State: featurizer leftover samples, feature frames
    not yet a multiple of the encoder's subsampling, encoder state, predictor state + hypothesis.
    Generic over its result type (``StreamResult`` here); subclasses with another result override ``_result``.
    """

    def __init__(self, model: TransducerASR[Any, StreamResultT], chunk_ms: float = 160.0):
        if chunk_ms <= 0:
            raise ZooError("chunk_ms must be positive")
        self.model = model.eval()
        self.chunk = max(1, int(round(model.sample_rate * chunk_ms / 1000)))
        self.reset()

    def reset(self) -> None:
        dev = self._device = self.model.featurizer.mean.device
        self._samples = torch.zeros(1, 0, device=dev)
        self._pending = torch.zeros(1, 0, device=dev)
        self._frames = torch.zeros(1, 0, self.model.featurizer.dim, device=dev)
        self._enc_state = self.model.encoder.init_state(1, dev)
        self._dec: GreedyState = init_greedy_state(self.model, 1, dev)
        self._t = 0
        self._text = ""
        self._finalized: StreamResultT | None = None  # set by finalize(); accept_waveform() refuses until reset()

    @property
    def tokens(self) -> list[int]:
        return list(self._dec.hyps[0])

    @torch.inference_mode()
    def _process(self, wav: torch.Tensor) -> None:
        m = self.model
        feats, self._pending = m.featurizer.stream_step(wav, self._pending)
        self._frames = torch.cat([self._frames, feats], dim=1)
        n = (self._frames.shape[1] // m.encoder.subsampling) * m.encoder.subsampling
        if n == 0:
            return
        enc, self._enc_state = m.encoder.stream_step(self._frames[:, :n], self._enc_state)
        self._frames = self._frames[:, n:]
        self._decode(enc)

    def _decode(self, enc: torch.Tensor | None) -> None:
        if enc is not None and enc.shape[1]:
            greedy_search(self.model, enc, torch.tensor([enc.shape[1]], device=enc.device), self._dec,
                          frame_offset=self._t)
            self._t += enc.shape[1]

    def _result(self) -> StreamResultT:
        text = self.model.tokenizer.decode(self._dec.hyps[0])
        new = text[len(self._text):] if text.startswith(self._text) else text
        self._text = text
        # StreamResultT is StreamResult unless a subclass overrides this method
        return cast(StreamResultT, StreamResult(new_text=new, text=text))

    def accept_waveform(self, wav, sample_rate: int | None = None) -> StreamResultT:
        """Push (S,) samples at the model's rate; returns the new text and the text so far."""
        if self._finalized is not None:
            raise ZooError("this streaming session was finalized — call reset() (or open a new session with "
                           "model.stream()) before streaming more audio")
        sr = sample_rate or self.model.sample_rate
        if sr != self.model.sample_rate:
            raise ZooError(f"stream audio must be {self.model.sample_rate} Hz (got {sr}); resample it first")
        wav = torch.as_tensor(wav, dtype=torch.float32, device=self._device)
        if wav.dim() == 2 and wav.shape[0] == 1:
            wav = wav[0]
        if wav.dim() != 1:
            raise ZooError(f"stream mono (S,) samples; got shape {tuple(wav.shape)} (downmix first)")
        wav = wav[None]
        if not torch.isfinite(wav).all():
            raise ZooError("streamed audio contains NaN or Inf samples")
        self._samples = torch.cat([self._samples, wav], dim=1)
        while self._samples.shape[1] >= self.chunk:
            self._process(self._samples[:, : self.chunk])
            self._samples = self._samples[:, self.chunk:]
        return self._result()

    def finalize(self) -> StreamResultT:
        """Flush buffered audio and return the final result; the session can then be ``reset()``. Calling it
        again returns the same result; ``accept_waveform`` refuses audio until ``reset()``."""
        if self._finalized is not None:
            return self._finalized
        if self._samples.shape[1]:
            self._process(self._samples)
            self._samples = self._samples[:, :0]
        with torch.inference_mode():
            enc, self._enc_state = self.model.encoder.stream_flush(self._enc_state)
            self._decode(enc)
        self._finalized = self._result()
        return self._finalized
