"""ConvRNN-T encoder (Radfar et al., Interspeech 2022): a causal local CNN and a causal global CNN
(dilated depthwise convs + squeeze-and-excitation over the utterance so far) fused in front of LSTMs.

Every component is causal, so ``stream_step`` reproduces ``forward`` exactly; the state holds each
conv's left context, the SE running sums/counts and the LSTM states.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.nets.encoder import StreamingEncoder, register_encoder, stack_frames


class CausalSE(nn.Module):
    """Squeeze-and-excitation whose summary at frame t is the mean of frames 0..t (cumulative mean).

    x (B, C, T) -> x * sigmoid(W2 relu(W1 mean_{<=t} x)). Streaming state: running sum (B, C), count (B, 1).
    """

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        self.fc1 = nn.Linear(channels, max(4, channels // reduction))
        self.fc2 = nn.Linear(max(4, channels // reduction), channels)

    def forward(self, x: torch.Tensor, total: torch.Tensor, count: torch.Tensor):
        csum = torch.cumsum(x, dim=2) + total.unsqueeze(-1)                       # (B, C, T)
        n = torch.arange(1, x.shape[2] + 1, device=x.device, dtype=x.dtype) + count  # (B, T)
        mean = (csum / n.unsqueeze(1)).transpose(1, 2)                            # (B, T, C)
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(mean)))).transpose(1, 2)
        return x * gate, csum[:, :, -1], count + x.shape[2]


class GlobalBlock(nn.Module):
    """PW(C->2C) -> GLU -> LN -> causal dilated DW conv -> SiLU -> LN -> PW(C->C) -> causal SE -> + x."""

    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float, se_reduction: int):
        super().__init__()
        self.pw1 = nn.Conv1d(channels, 2 * channels, 1)
        self.norm1 = nn.LayerNorm(channels)
        self.dw = nn.Conv1d(channels, channels, kernel, dilation=dilation, groups=channels)
        self.norm2 = nn.LayerNorm(channels)
        self.pw2 = nn.Conv1d(channels, channels, 1)
        self.se = CausalSE(channels, se_reduction)
        self.drop = nn.Dropout(dropout)
        self.context = (kernel - 1) * dilation

    def forward(self, x: torch.Tensor, state: dict, i: int):
        """x (B, C, T); state[f"ctx{i}"] (B, C, context), state[f"se_sum{i}"] (B, C), state["count"] (B, 1)."""
        y = F.glu(self.pw1(x), dim=1)
        y = self.norm1(y.transpose(1, 2)).transpose(1, 2)
        y = torch.cat([state[f"ctx{i}"], y], dim=2)
        new_ctx = y[:, :, y.shape[2] - self.context:]
        y = F.silu(self.dw(y))
        y = self.norm2(y.transpose(1, 2)).transpose(1, 2)
        y, se_sum, _ = self.se(self.pw2(y), state[f"se_sum{i}"], state["count"])
        return x + self.drop(y), new_ctx, se_sum


class CausalConv2d(nn.Module):
    """Conv over (time, freq): left-padded in time (no look-ahead), 'same' in frequency, stride in frequency.

    x (B, C_in, T, F) with ``ctx`` (B, C_in, k_t - 1, F) previous frames -> (B, C_out, T, F'), new ctx.
    """

    def __init__(self, c_in: int, c_out: int, kernel=(3, 3), freq_stride: int = 2):
        super().__init__()
        self.kt = kernel[0]
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=(1, freq_stride), padding=(0, kernel[1] // 2))

    def forward(self, x: torch.Tensor, ctx: torch.Tensor):
        x = torch.cat([ctx, x], dim=2)
        return self.conv(x), x[:, :, x.shape[2] - (self.kt - 1):]


@register_encoder("convrnnt")
class ConvRNNTEncoder(StreamingEncoder):
    """ConvRNN-T encoder.

    Frames are stacked ``stack`` x (10 ms -> 40 ms) and layer-normalised once (exactly the LSTM baseline's
    input). The local CNN sees the stacked sub-frames as input channels of a (time x frequency) map; the
    global CNN works on a projection of the stacked frames. Each branch ends in a LayerNorm; the two are
    fused (concat -> linear, as in the paper) and, with ``input_skip``, concatenated with the normalised
    input frames before the LSTM stack.

    Args:
        input_dim: feature dim F. stack: frames per output frame.
        local_channels: channels of the local 2-D convs (each halves the frequency axis).
        global_channels: width C of the global CNN; global_blocks, global_kernel: blocks and DW kernel
            (block b has dilation 2**b).
        fused_dim: size of concat(local, global) -> linear. hidden, layers: LSTM stack.
        input_skip: the LSTMs also get the normalised stacked frames, and the fusion linear starts at zero
            (our choice, as zero-initialised residual branches: training starts from exactly the LSTM
            baseline and learns how much to use the CNNs; randomly initialised fusions collapsed on AN4 to
            the predictor-only solution, CTC loss stuck at the all-blank plateau).
    Shapes: forward(feats (B, T, F), lengths (B,)) -> (B, T // stack, hidden), (B,).
    """

    def __init__(self, input_dim: int = 80, stack: int = 4, local_channels: tuple[int, ...] = (16, 32),
                 local_dim: int = 128, global_channels: int = 128, global_blocks: int = 4, global_kernel: int = 3,
                 se_reduction: int = 8, fused_dim: int = 256, hidden: int = 240, layers: int = 3,
                 dropout: float = 0.1, input_skip: bool = True):
        super().__init__()
        local_channels = tuple(local_channels)
        self._cfg = dict(input_dim=input_dim, stack=stack, local_channels=list(local_channels), local_dim=local_dim,
                         global_channels=global_channels, global_blocks=global_blocks, global_kernel=global_kernel,
                         se_reduction=se_reduction, fused_dim=fused_dim, hidden=hidden, layers=layers, dropout=dropout,
                         input_skip=input_skip)
        self.subsampling = stack
        self.output_dim = hidden
        self.input_dim = input_dim
        self.norm = nn.LayerNorm(input_dim * stack)
        chans = (stack,) + local_channels
        self.local = nn.ModuleList(CausalConv2d(a, b) for a, b in zip(chans[:-1], chans[1:]))
        f = input_dim
        for _ in local_channels:
            f = (f + 1) // 2
        self.local_out = nn.Sequential(nn.Linear(local_channels[-1] * f, local_dim), nn.LayerNorm(local_dim))
        self.global_in = nn.Linear(input_dim * stack, global_channels)
        self.blocks = nn.ModuleList(GlobalBlock(global_channels, global_kernel, 2 ** b, dropout, se_reduction)
                                    for b in range(global_blocks))
        self.global_norm = nn.LayerNorm(global_channels)
        self.fuse = nn.Linear(local_dim + global_channels, fused_dim)
        self.input_skip = input_skip
        if input_skip:  # zero-init fusion: training starts from the LSTM baseline and learns to use the CNNs
            nn.init.zeros_(self.fuse.weight)
            nn.init.zeros_(self.fuse.bias)
        self.drop = nn.Dropout(dropout)
        lstm_in = fused_dim + (input_dim * stack if input_skip else 0)
        self.lstm = nn.LSTM(lstm_in, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0,
                            batch_first=True)

    def config(self) -> dict:
        return dict(self._cfg)

    def delayed_parameters(self) -> list:
        """The CNN branches and their fusion (everything the LSTM baseline does not have)."""
        mods = [self.local, self.local_out, self.global_in, self.blocks, self.global_norm, self.fuse]
        return [p for m in mods for p in m.parameters()]

    def init_state(self, batch_size: int, device=None) -> dict:
        z = lambda *s: torch.zeros(*s, device=device)  # noqa: E731
        st, f = {}, self.input_dim
        for i, conv in enumerate(self.local):
            assert isinstance(conv, CausalConv2d)  # nn.ModuleList yields plain nn.Module
            st[f"lctx{i}"] = z(batch_size, conv.conv.in_channels, conv.kt - 1, f)
            f = (f + 1) // 2
        for i, blk in enumerate(self.blocks):
            assert isinstance(blk, GlobalBlock)
            st[f"ctx{i}"] = z(batch_size, blk.dw.in_channels, blk.context)
            st[f"se_sum{i}"] = z(batch_size, blk.dw.in_channels)
        st["count"] = z(batch_size, 1)
        shape = (self.lstm.num_layers, batch_size, self.lstm.hidden_size)
        st["h"], st["c"] = z(*shape), z(*shape)
        return st

    def _run(self, x: torch.Tensor, state: dict):
        """x (B, T', stack * F) stacked frames -> (B, T', hidden), new state."""
        b, t, _ = x.shape
        new = {}
        x = self.norm(x)
        # local: (B, stack, T', F) time x frequency map
        loc = x.reshape(b, t, self.subsampling, self.input_dim).permute(0, 2, 1, 3)
        for i, conv in enumerate(self.local):
            loc, new[f"lctx{i}"] = conv(loc, state[f"lctx{i}"])
            loc = F.silu(loc)
        loc = self.local_out(loc.permute(0, 2, 1, 3).reshape(b, t, -1))
        # global: (B, C, T')
        g = self.global_in(x).transpose(1, 2)
        for i, blk in enumerate(self.blocks):
            g, new[f"ctx{i}"], new[f"se_sum{i}"] = blk(g, state, i)
        new["count"] = state["count"] + t
        y = self.fuse(torch.cat([loc, self.global_norm(g.transpose(1, 2))], dim=-1))
        if self.input_skip:
            y = torch.cat([x, y], dim=-1)
        y, (new["h"], new["c"]) = self.lstm(self.drop(y), (state["h"], state["c"]))
        return y, new

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        x, lengths = stack_frames(feats, lengths, self.subsampling)
        if x.shape[1] == 0:
            return x.new_zeros(x.shape[0], 0, self.output_dim), lengths
        y, _ = self._run(x, self.init_state(x.shape[0], x.device))
        return y, lengths

    def stream_step(self, feats: torch.Tensor, state: dict):
        x, _ = stack_frames(feats, torch.zeros(feats.shape[0], dtype=torch.long), self.subsampling)
        if x.shape[1] == 0:
            return x.new_zeros(x.shape[0], 0, self.output_dim), state
        return self._run(x, state)
