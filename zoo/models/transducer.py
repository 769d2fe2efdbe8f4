"""``TransducerASR``: featurizer + streaming encoder + predictor + joiner + tokenizer, with
``transcribe()`` and ``stream()``. This is what ``zoo.from_pretrained`` returns for ASR models."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Generic, Sequence, cast

import torch
from typing_extensions import TypeVar

from zoo.errors import ZooError
from zoo.models.base import ZooModel, register_architecture
from zoo.models.decoding import GreedyState, beam_search, greedy_search, init_greedy_state
from zoo.models.speaker import SpeakerEmbedder
from zoo.nets import FbankFeaturizer, Joiner, LSTMPredictor, build_encoder
from zoo.nets.cohort import CohortInput
from zoo.text import CharTokenizer

NO_COHORT_INPUT = ("this model has no cohort input — drop the cohort (or fine-tune one with "
                   "model.init_args.cohort_input)")


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


DECODING_KEYS = ("length_bonus", "ilm_weight")


@register_architecture("transducer", task="asr")
class TransducerASR(ZooModel, Generic[OutputT, StreamResultT]):
    """An RNN-T speech recogniser over raw audio.

    Args:
        encoder: ``{"name": <ENCODERS key>, **kwargs}``.
        predictor, joiner, featurizer: kwargs of LSTMPredictor, Joiner, FbankFeaturizer.
        tokenizer: a CharTokenizer / SentencePieceTokenizer (not a module; saved beside the weights).
        cohort_input: cohort membership as an extra input (Dheram et al. 2022; ``zoo.nets.cohort``): ``{"n_cohorts":
            K, "centroids": K x D k-means centroids of speaker embeddings, "speaker": the speaker net's config
            (``SpeakerEmbedder`` kwargs; its frozen weights are part of this model's, under ``cohort.speaker``)
            or null, "speaker_model": where that net came from (a note), "assign_ms": audio that picks the
            cohort, "metric": euclidean | cosine}``; null (default): no cohort input. A released model gets one
            with :meth:`add_cohort_input`.

    With a cohort input, a learned vector of the utterance's cohort is added to every normalised feature frame
    before the encoder. ``encode`` / ``transcribe`` / ``stream_all`` take the cohort (an id, or -1 / None =
    unknown); an unknown cohort is the centroid nearest to the speaker embedding of the utterance's first
    ``assign_ms`` of audio. A streaming session waits for that much audio before it decodes (or takes
    ``session.set_cohort(id)``), so streaming and batch inference pick the same cohort.
    """

    card_metadata = {"task_type": "automatic-speech-recognition", "pipeline_tag": "automatic-speech-recognition",
                     "metrics": ["wer", "cer"], "tags": ["speech", "asr", "rnnt", "streaming", "lightning"]}

    def __init__(self, encoder: dict, predictor: dict | None = None, joiner: dict | None = None,
                 featurizer: dict | None = None, tokenizer=None, cohort_input: dict | None = None):
        super().__init__()
        self.tokenizer = tokenizer or CharTokenizer()
        v = self.tokenizer.vocab_size
        self.featurizer = FbankFeaturizer(**(featurizer or {}))
        self.encoder = self._build_encoder(encoder, self.featurizer.dim)
        self.predictor = LSTMPredictor(v, **(predictor or {}))
        self.joiner = Joiner(self.encoder.output_dim, self.predictor.output_dim, v, **(joiner or {}))
        self.cohort: CohortInput | None = None
        self._cohort_source: str | None = None
        if cohort_input is not None:
            cfg = dict(cohort_input)
            spk = cfg.pop("speaker", None)
            n = cfg.pop("n_cohorts", None)
            self.add_cohort_input(cfg.pop("centroids"), SpeakerEmbedder(**spk) if spk is not None else None, **cfg)
            if n is not None and int(n) != self.cohort_count:
                raise ValueError(f"cohort_input: n_cohorts {n} but {self.cohort_count} centroids")

    def add_cohort_input(self, centroids, speaker: SpeakerEmbedder | None, speaker_model: str | None = None,
                         assign_ms: float | None = 2000.0, metric: str = "euclidean") -> None:
        """Give this model a cohort input (zero-initialised: outputs are unchanged until it is trained).

        ``centroids``: K x D k-means centroids of L2-normalised speaker embeddings; ``speaker``: the speaker
        model that embeds utterances whose cohort is not given (it becomes part of this model, frozen), or None
        (cohorts must then always be given); ``speaker_model``: its name / folder, kept in config.json as a note.
        """
        if self.cohort is not None:
            raise ZooError("this model already has a cohort input")
        if speaker is not None:
            if speaker.sample_rate != self.sample_rate:
                raise ZooError(f"the speaker model runs at {speaker.sample_rate} Hz, this ASR model at "
                               f"{self.sample_rate} Hz — use a speaker model of the same rate")
            if len(centroids) and len(centroids[0]) != speaker.embed_dim:
                raise ZooError(f"the cohort centroids have {len(centroids[0])} dimensions, the speaker model's "
                               f"embeddings {speaker.embed_dim} — make the cohorts with this speaker model")
        dev = self.featurizer.mean.device
        self.cohort = CohortInput(len(centroids), self.featurizer.dim, centroids, speaker, assign_ms, metric).to(dev)
        self._cohort_source = None if speaker_model is None else str(speaker_model)

    def _build_encoder(self, cfg: dict, input_dim: int):
        """The encoder from its config (subclasses with another encoder family override this)."""
        self._encoder_name = cfg["name"]
        return build_encoder(cfg, input_dim)

    # --- config ---------------------------------------------------------------------------------
    def config(self) -> dict:
        cfg: dict = {"featurizer": self.featurizer.config(),
                     "encoder": {"name": self._encoder_name, **self.encoder.config()},
                     "predictor": self.predictor.config(), "joiner": self.joiner.config()}
        if self.cohort is not None:
            cfg["cohort_input"] = self.cohort_config()
        return cfg

    def cohort_config(self) -> dict | None:
        """The ``cohort_input`` entry of config.json (None without a cohort input)."""
        c = self.cohort
        if c is None:
            return None
        spk = c.speaker
        return {"n_cohorts": c.n_cohorts, "centroids": c.centroids.tolist(), "speaker_model": self._cohort_source,
                "speaker": spk.config() if isinstance(spk, SpeakerEmbedder) else None,
                "assign_ms": c.assign_ms, "metric": c.metric}

    @property
    def cohort_count(self) -> int:
        """K, the number of cohorts of the cohort input (0 without one)."""
        return 0 if self.cohort is None else self.cohort.n_cohorts

    @property
    def frame_ms(self) -> float:
        """Encoder output frame shift in ms."""
        return self.featurizer.hop * self.encoder.subsampling * 1000 / self.sample_rate

    def streaming_info(self, chunk_ms: float = 160.0) -> dict:
        """Algorithmic latency = chunk + analysis-window look-ahead + encoder look-ahead."""
        win_ms = (self.featurizer.win - self.featurizer.hop) * 1000 / self.sample_rate
        la_ms = self.encoder.lookahead_frames * self.featurizer.hop * 1000 / self.sample_rate
        info = {"supported": True, "frame_ms": self.frame_ms, "chunk_ms": chunk_ms,
                "algorithmic_latency_ms": chunk_ms + win_ms + la_ms}
        if self.cohort is not None and self.cohort.speaker is not None:
            info["cohort_wait_ms"] = self.cohort.assign_ms  # once per utterance, unless the cohort is given
        return info

    # --- batch inference ------------------------------------------------------------------------
    def encode(self, wav: torch.Tensor, lengths: torch.Tensor, cohort=None):
        """(B, S) audio, (B,) sample counts -> (B, T', D) encoder output, (B,) frame counts.

        ``cohort`` (models with a cohort input): an id for all, (B,) ids with -1 = unknown, or None = all unknown
        (see :meth:`cohort_ids`)."""
        feats, flens = self.featurizer(wav, lengths)
        feats = self.add_cohort(feats, self.cohort_ids(wav, lengths, cohort))
        return self.encoder(feats, flens)

    def cohort_ids(self, wav: torch.Tensor, lengths: torch.Tensor | None, cohort=None) -> torch.Tensor | None:
        """The (B,) cohort of each utterance of a (B, S) batch: ``cohort`` (an int, a sequence or a (B,) tensor),
        where it is -1 or None the centroid nearest to the utterance's speaker embedding. None for a model
        without a cohort input (which refuses a ``cohort``)."""
        c = self.cohort
        if c is None:
            if cohort is not None:
                raise ZooError(NO_COHORT_INPUT)
            return None
        b, dev = wav.shape[0], wav.device
        if cohort is None:
            ids = torch.full((b,), -1, dtype=torch.long, device=dev)
        elif isinstance(cohort, int):
            ids = torch.full((b,), int(cohort), dtype=torch.long, device=dev)
        else:
            ids = torch.as_tensor(cohort, dtype=torch.long).to(dev).reshape(-1)
            if ids.numel() != b:
                raise ZooError(f"got {ids.numel()} cohort ids for {b} utterances — give one per utterance")
        if bool((ids >= c.n_cohorts).any()) or bool((ids < -1).any()):
            raise ZooError(f"cohort ids must be in 0..{c.n_cohorts - 1} (or -1: unknown); got {ids.tolist()}")
        unknown = ids < 0
        if bool(unknown.any()):
            if c.speaker is None:
                raise ZooError("this model's cohort input has no speaker model to find unknown cohorts — "
                               "pass every utterance's cohort id")
            lens = lengths if lengths is not None else torch.full((b,), wav.shape[-1], device=dev)
            ids = ids.clone()
            ids[unknown] = c.assign(wav[unknown], lens[unknown])
        return ids

    def add_cohort(self, feats: torch.Tensor, cohort: torch.Tensor | None) -> torch.Tensor:
        """(B, T, F) normalised features + the (B,) cohorts' learned vectors (unchanged without a cohort input)."""
        if self.cohort is None:
            return feats
        if cohort is None:
            raise ValueError("a model with a cohort input needs the batch's cohort ids (see cohort_ids)")
        return self.cohort(feats, cohort)

    def decoding_defaults(self, beam_size: int = 1) -> dict[str, float]:
        """Decoding settings shipped in config.json's ``decoding`` block, chosen on dev at release:
        ``{"greedy": {...}, "beam": {...}}`` with ``length_bonus`` / ``ilm_weight`` (see ``greedy_search``,
        ``beam_search``). Those of greedy decoding (and streaming) for ``beam_size`` 1, else of beam search;
        {} if none, or with the environment variable ``ZOO_DECODING=plain``. ``transcribe`` and streaming sessions
        use them unless told otherwise."""
        block = self.zoo_config.get("decoding") or {}
        if os.environ.get("ZOO_DECODING", "") == "plain":  # reproduce results made before a model shipped settings
            return {}
        bad = sorted(set(block) - {"greedy", "beam", "chosen_on"})
        bad += [f"{m}.{k}" for m in ("greedy", "beam") for k in sorted(set(block.get(m) or {}) - set(DECODING_KEYS))]
        if bad:
            raise ZooError(f"config.json 'decoding' has unknown keys {bad} (known: greedy / beam with "
                           f"{', '.join(DECODING_KEYS)}, chosen_on)")
        mode = block.get("greedy" if beam_size <= 1 else "beam") or {}
        return {k: float(mode[k]) for k in DECODING_KEYS if k in mode}

    def decode(self, enc: torch.Tensor, lengths: torch.Tensor, beam_size: int = 1, lm=None,
               lm_weight: float = 0.0, length_bonus: float = 0.0, ilm_weight: float = 0.0) -> list[list[int]]:
        """Token ids per utterance: greedy for ``beam_size`` 1 without an external LM, else modified beam search
        (shallow fusion with ``lm`` at ``lm_weight``); both take ``length_bonus`` per token and internal-LM
        subtraction at ``ilm_weight`` (see ``greedy_search`` / ``beam_search``)."""
        if beam_size <= 1 and (lm is None or lm_weight == 0.0):
            return greedy_search(self, enc, lengths, ilm_weight=ilm_weight, length_bonus=length_bonus).hyps
        return [beam_search(self, enc[i], int(lengths[i]), beam_size, lm=lm, lm_weight=lm_weight,
                            length_bonus=length_bonus, ilm_weight=ilm_weight) for i in range(enc.shape[0])]

    @torch.inference_mode()
    def transcribe(self, inputs: Sequence | str | torch.Tensor, sample_rate: int | None = None,
                   batch_size: int = 8, beam_size: int = 1, progress: bool = False, lm=None,
                   lm_weight: float = 0.0, length_bonus: float | None = None, ilm_weight: float | None = None,
                   cohort=None) -> list[OutputT]:
        """Transcribe audio files (paths) or waveforms ((S,) or (C, S) with ``sample_rate``).

        Returns one string per input, in order. ``lm`` (``zoo.models.lm.CharNgramLM`` or ``WordNgramLM`` over
        this model's characters), ``lm_weight`` and ``length_bonus``: shallow fusion in beam search;
        ``ilm_weight``: subtract that much of the internal LM estimate. A ``length_bonus`` / ``ilm_weight`` left at
        None takes the model's ``decoding_defaults(beam_size)`` (else 0).
        ``cohort`` (models with a cohort input): one id for every input, or one per input (-1: unknown); None:
        each input's cohort is found from its audio (nearest centroid).
        """
        if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
            raise ZooError(f"beam_size must be a whole number >= 1 (1 = greedy; got {beam_size!r})")
        defaults = self.decoding_defaults(beam_size)
        length_bonus = defaults.get("length_bonus", 0.0) if length_bonus is None else length_bonus
        ilm_weight = defaults.get("ilm_weight", 0.0) if ilm_weight is None else ilm_weight
        fusion: dict = {}
        if lm is not None or lm_weight or length_bonus or ilm_weight:
            if lm is None and lm_weight:
                raise ZooError("lm_weight needs an lm")
            if type(self)._transcribe_batch is not TransducerASR._transcribe_batch:
                raise ZooError(f"LM fusion is not supported by {type(self).__name__}")
            if lm is not None and getattr(lm, "vocab", None) != getattr(self.tokenizer, "vocab", None):
                raise ZooError("the LM's character vocabulary differs from the model's tokenizer")
            fusion = {"lm": lm, "lm_weight": float(lm_weight), "length_bonus": float(length_bonus),
                      "ilm_weight": float(ilm_weight)}
        if cohort is not None and self.cohort is None:
            raise ZooError(NO_COHORT_INPUT)
        if cohort is None:
            fn = lambda wav, lens: self._transcribe_batch(wav, lens, beam_size, **fusion)  # noqa: E731
        elif isinstance(cohort, int):
            fn = lambda wav, lens: self._transcribe_batch(wav, lens, beam_size, cohort=cohort, **fusion)  # noqa: E731
        else:
            ids = [int(c) for c in cohort]
            single = isinstance(inputs, (str, os.PathLike)) or (hasattr(inputs, "ndim") and inputs.ndim == 1)
            n = 1 if single else len(inputs)
            if len(ids) != n:
                raise ZooError(f"got {len(ids)} cohort ids for {n} inputs — give one per input (or one int)")
            done = [0]  # map_batches visits the inputs in order in consecutive batches (no sort_by_length)

            def fn(wav, lens):
                part, done[0] = ids[done[0]:done[0] + len(lens)], done[0] + len(lens)
                return self._transcribe_batch(wav, lens, beam_size, cohort=part, **fusion)
        return self.map_batches(inputs, sample_rate, batch_size, fn, progress=progress, description="transcribing")

    def _transcribe_batch(self, wav: torch.Tensor, lens: torch.Tensor, beam_size: int, *, cohort=None,
                          **fusion) -> list[OutputT]:
        """One padded batch (B, S) -> B outputs (here texts; subclasses may return richer results)."""
        enc, elens = self.encode(wav, lens, cohort)
        texts = [self.tokenizer.decode(toks) for toks in self.decode(enc, elens, beam_size, **fusion)]
        return cast(list[OutputT], texts)  # OutputT is str unless a subclass overrides this method

    def stream_all(self, wav: torch.Tensor, chunk_ms: float = 160.0, cohort: int | None = None) -> StreamResultT:
        """Push a whole (S,) waveform at the model's rate through a fresh session, chunk by chunk; the final
        result of the session (``StreamResult``, or the subclass's). ``cohort``: see ``StreamingSession.set_cohort``."""
        s = self.stream(chunk_ms=chunk_ms)
        if cohort is not None:
            s.set_cohort(cohort)
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

    A model with a cohort input needs the utterance's cohort before its first frame: ``set_cohort(id)`` before
    any audio, or else the session holds the audio until ``assign_ms`` (the model's) have arrived (or
    ``finalize()``), picks the nearest centroid of their speaker embedding — the same audio ``transcribe`` uses —
    and then decodes everything held at once. ``reset()`` forgets the cohort (a new utterance, maybe a new
    speaker).
    """

    def __init__(self, model: TransducerASR[Any, StreamResultT], chunk_ms: float = 160.0):
        if chunk_ms <= 0:
            raise ZooError("chunk_ms must be positive")
        self.model = model.eval()
        self.chunk = max(1, int(round(model.sample_rate * chunk_ms / 1000)))
        self._settings = model.decoding_defaults(1)  # the greedy settings: streamed text == batch greedy text
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
        self._cohort: torch.Tensor | None = None  # (1,) cohort id of the utterance, once known
        self._started = False  # audio was featurized (the cohort can no longer change)

    def set_cohort(self, cohort: int) -> None:
        """Use cohort ``cohort`` for this utterance (models with a cohort input; before any audio, until
        ``reset()``) instead of finding it from the audio."""
        if self._started or self._samples.shape[1]:
            raise ZooError("set the cohort before streaming audio (or reset() the session first)")
        if self.model.cohort is None:
            raise ZooError(NO_COHORT_INPUT)
        k = self.model.cohort_count
        if isinstance(cohort, bool) or int(cohort) != cohort or not 0 <= int(cohort) < k:
            raise ZooError(f"cohort must be a whole number in 0..{k - 1} (got {cohort!r})")
        self._cohort = torch.tensor([int(cohort)], device=self._device)

    @property
    def tokens(self) -> list[int]:
        return list(self._dec.hyps[0])

    @torch.inference_mode()
    def _process(self, wav: torch.Tensor) -> None:
        m = self.model
        self._started = True
        feats, self._pending = m.featurizer.stream_step(wav, self._pending)
        feats = m.add_cohort(feats, self._cohort)
        self._frames = torch.cat([self._frames, feats], dim=1)
        n = (self._frames.shape[1] // m.encoder.subsampling) * m.encoder.subsampling
        if n == 0:
            return
        enc, self._enc_state = m.encoder.stream_step(self._frames[:, :n], self._enc_state)
        self._frames = self._frames[:, n:]
        self._decode(enc)

    def _cohort_ready(self, final: bool = False) -> bool:
        """Is the utterance's cohort known (or not needed)? Decides it once ``assign_ms`` of audio (``final``: all
        of it) is held: no audio has been featurized yet, so ``_samples`` holds the utterance from its start."""
        c = self.model.cohort
        if c is None or self._cohort is not None:
            return True
        n = c.assign_samples
        have = self._samples.shape[1]
        if have and c.speaker is None:
            raise ZooError("this model's cohort input has no speaker model to find the cohort — call "
                           "session.set_cohort(id) before streaming")
        if have == 0 or (not final and (n is None or have < n)):
            return False
        with torch.inference_mode():
            self._cohort = self.model.cohort_ids(self._samples[:, :n] if n is not None else self._samples, None)
        return True

    def _decode(self, enc: torch.Tensor | None) -> None:
        if enc is not None and enc.shape[1]:
            greedy_search(self.model, enc, torch.tensor([enc.shape[1]], device=enc.device), self._dec,
                          frame_offset=self._t, ilm_weight=self._settings.get("ilm_weight", 0.0),
                          length_bonus=self._settings.get("length_bonus", 0.0))
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
        if not self._cohort_ready():
            return self._result()
        while self._samples.shape[1] >= self.chunk:
            self._process(self._samples[:, : self.chunk])
            self._samples = self._samples[:, self.chunk:]
        return self._result()

    def finalize(self) -> StreamResultT:
        """Flush buffered audio and return the final result; the session can then be ``reset()``. Calling it
        again returns the same result; ``accept_waveform`` refuses audio until ``reset()``."""
        if self._finalized is not None:
            return self._finalized
        if self._samples.shape[1] and self._cohort_ready(final=True):
            self._process(self._samples)
            self._samples = self._samples[:, :0]
        with torch.inference_mode():
            enc, self._enc_state = self.model.encoder.stream_flush(self._enc_state)
            self._decode(enc)
        self._finalized = self._result()
        return self._finalized
