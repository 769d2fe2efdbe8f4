"""Transducer search: batched greedy (also used for streaming) and modified beam search
(at most one token per frame, as in icefall's ``modified_beam_search``)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class GreedyState:
    """Decoder state carried across chunks: predictor state, projected predictor output, hypotheses."""
    pred_state: tuple
    pred_proj: torch.Tensor  # (B, J)
    hyps: list = field(default_factory=list)  # B lists of token ids
    frames: list = field(default_factory=list)  # B lists of the encoder frame index of each token


def init_greedy_state(net, batch_size: int, device=None) -> GreedyState:
    state = net.predictor.init_state(batch_size, device)
    out, state = net.predictor.step(torch.zeros(batch_size, dtype=torch.long, device=device), state)
    return GreedyState(state, net.joiner.pred_proj(out), [[] for _ in range(batch_size)],
                       [[] for _ in range(batch_size)])


def internal_lm_log_probs(net, pred_proj: torch.Tensor) -> torch.Tensor:
    """Internal LM estimate (Meng et al. 2021, ILME): the joiner with the acoustic term removed, renormalised
    over non-blank tokens. pred_proj (H, J) projected predictor outputs -> (H, V - 1) log-probs of ids 1..V-1."""
    logits = net.joiner(net.joiner.enc_proj.bias.expand_as(pred_proj), pred_proj, projected=True)
    return torch.log_softmax(logits[:, 1:], -1)


@torch.no_grad()
def greedy_search(net, enc: torch.Tensor, lengths: torch.Tensor, state: GreedyState | None = None,
                  frame_offset: int = 0, max_symbols: int = 5, ilm_weight: float = 0.0,
                  length_bonus: float = 0.0) -> GreedyState:
    """Greedy decoding of enc (B, T, D) with valid lengths (B,); continues from ``state``. With ``ilm_weight`` /
    ``length_bonus``, each non-blank token's log-prob gets ``length_bonus - ilm_weight * log p_ILM`` before the
    argmax (see ``beam_search``); 0 / 0 is plain greedy."""
    b, t_max, _ = enc.shape
    if state is None:
        state = init_greedy_state(net, b, enc.device)
    enc_p = net.joiner.enc_proj(enc)
    for t in range(t_max):
        active = t < lengths
        if not active.any():
            break
        for _ in range(max_symbols):
            logits = net.joiner(enc_p[:, t], state.pred_proj, projected=True)
            if ilm_weight or length_bonus:
                logits = torch.log_softmax(logits, -1)
                logits[:, 1:] += length_bonus
                if ilm_weight:
                    logits[:, 1:] -= ilm_weight * internal_lm_log_probs(net, state.pred_proj)
            tok = logits.argmax(-1)
            emit = (tok != 0) & active
            if not emit.any():
                break
            out, new = net.predictor.step(tok, state.pred_state)
            m = emit.view(1, b, 1)
            state.pred_state = tuple(torch.where(m, n, o) for n, o in zip(new, state.pred_state))
            state.pred_proj = torch.where(emit[:, None], net.joiner.pred_proj(out), state.pred_proj)
            for i in emit.nonzero().flatten().tolist():
                state.hyps[i].append(int(tok[i]))
                state.frames[i].append(frame_offset + t)
    return state


@torch.no_grad()
def beam_search(net, enc: torch.Tensor, length: int, beam: int = 4, lm=None, lm_weight: float = 0.0,
                length_bonus: float = 0.0, ilm_weight: float = 0.0) -> list[int]:
    """Modified beam search for one utterance: enc (T, D) -> best token ids.

    Shallow fusion (optional): with ``lm`` (:class:`zoo.models.lm.CharNgramLM`, or the word LM scored on characters
    :class:`zoo.models.lm.WordNgramLM`: ``initial_state()``, ``log_probs(state)`` indexed by token id,
    ``next_state(state, id)``, ``final(state)``; states hashable) every non-blank token
    scores ``log p_rnnt + lm_weight * log p_lm + length_bonus``, and finished hypotheses are ranked with
    ``lm_weight * lm.final(state)`` added (end of sentence). ``ilm_weight`` subtracts that much of the internal LM
    estimate (``internal_lm_log_probs``) from every non-blank token, as in ILME-based fusion (Meng et al. 2021).
    ``lm=None`` and ``length_bonus = ilm_weight = 0`` leave the search exactly as without fusion.
    """
    device = enc.device
    enc_p = net.joiner.enc_proj(enc[:length])
    st = net.predictor.init_state(1, device)
    out, st = net.predictor.step(torch.zeros(1, dtype=torch.long, device=device), st)
    fuse = lm is not None and lm_weight != 0.0
    lm_states: dict[tuple, object] = {(): lm.initial_state()} if fuse else {}
    # each hyp: tokens -> (log score, projected predictor output (J,), predictor state)
    hyps: dict[tuple, tuple] = {(): (0.0, net.joiner.pred_proj(out)[0], st)}
    for t in range(enc_p.shape[0]):
        keys = list(hyps)
        pred = torch.stack([hyps[k][1] for k in keys])  # (H, J)
        logp = torch.log_softmax(net.joiner(enc_p[t].expand_as(pred), pred, projected=True), -1)  # (H, V)
        scores = torch.tensor([hyps[k][0] for k in keys], device=device)[:, None] + logp
        if fuse or length_bonus or ilm_weight:
            v = logp.shape[1]
            extra = torch.zeros(len(keys), v, dtype=logp.dtype, device=device)
            if fuse:
                lmp = np.stack([lm.log_probs(lm_states[k])[:v] for k in keys])  # (H, V): blank column is 0
                if lmp.shape[1] < v:
                    raise ValueError(f"the LM covers {lmp.shape[1] - 1} token ids, the net {v - 1}")
                extra += lm_weight * torch.as_tensor(lmp, dtype=logp.dtype, device=device)
            if length_bonus:
                extra[:, 1:] += length_bonus
            if ilm_weight:
                extra[:, 1:] -= ilm_weight * internal_lm_log_probs(net, pred)
            scores = scores + extra
        top = scores.flatten().topk(min(beam, scores.numel()))
        v = logp.shape[1]
        new: dict[tuple, list] = {}
        for s, idx in zip(top.values.tolist(), top.indices.tolist()):
            h, tok = divmod(idx, v)
            key = keys[h] if tok == 0 else keys[h] + (tok,)
            if key in new:
                new[key][0] = float(torch.logaddexp(torch.tensor(new[key][0]), torch.tensor(s)))
            else:
                new[key] = [s, keys[h], tok]
        # advance the predictor for hyps that emitted a token, batched
        grow = [k for k, (_, _, tok) in new.items() if tok != 0]
        nxt = {}
        if grow:
            parents = [hyps[new[k][1]][2] for k in grow]
            h0 = torch.cat([p[0] for p in parents], dim=1)
            c0 = torch.cat([p[1] for p in parents], dim=1)
            toks = torch.tensor([new[k][2] for k in grow], device=device)
            out, (h1, c1) = net.predictor.step(toks, (h0, c0))
            proj = net.joiner.pred_proj(out)
            for i, k in enumerate(grow):
                nxt[k] = (new[k][0], proj[i], (h1[:, i:i + 1], c1[:, i:i + 1]))
        for k, (s, parent, tok) in new.items():
            if tok == 0:
                nxt[k] = (s, hyps[parent][1], hyps[parent][2])
        hyps = nxt
        if fuse:
            lm_states = {k: lm_states[k] if k in lm_states else lm.next_state(lm_states[k[:-1]], k[-1])
                         for k in hyps}
    if fuse:
        best = max(hyps.items(), key=lambda kv: kv[1][0] + lm_weight * lm.final(lm_states[kv[0]]))[0]
    else:
        best = max(hyps.items(), key=lambda kv: kv[1][0])[0]
    return list(best)
