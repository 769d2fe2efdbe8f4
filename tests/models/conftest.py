"""Fixtures of the decoding tests: five real AN4 test waveforms and a tiny random net made lively on one."""
import pytest

from zoo.audio import load_audio

from helpers import lively_net


@pytest.fixture(scope="module")
def wavs(an4_wavs):
    return [load_audio(p, 16000) for p in an4_wavs]


@pytest.fixture(scope="module")
def net(wavs):
    return lively_net(wavs[2])
