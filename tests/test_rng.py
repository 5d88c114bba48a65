"""Per-photon streams (Philox4x32-10 seeding xoshiro128**): known-answer vectors of both, the
documented layout, and bit-identical streams on every backend."""

import numpy as np
import pytest

from photonqd.backends import get_backend
from photonqd.rng import PhotonStreams, philox4x32_10, seed_key, words_to_uniform, xoshiro128ss

# Known-answer tests of Random123 (Salmon et al. SC'11, kat_vectors: philox4x32 10 rounds).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_philox_known_answers(ctr, key, expected):
    out = philox4x32_10(np.array(ctr, np.uint32), np.array(key, np.uint32))
    assert tuple(int(x) for x in out) == expected


def test_uniform_is_open_interval_and_exact_in_float32():
    words = np.array([0, 1, 511, 512, 2**32 - 1], dtype=np.uint32)
    u = words_to_uniform(words)
    assert u.min() > 0 and u.max() < 1
    assert np.array_equal(u.astype(np.float32).astype(np.float64), u)


# xoshiro128** from the state (1, 2, 3, 4): the outputs of Blackman & Vigna's reference
# implementation (xoshiro128starstar.c v1.1), as listed in the tests of the Rust crate rand_xoshiro.
XOSHIRO_KAT = [11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849,
               3729100597, 4258142804]


def test_xoshiro_known_answers():
    state = np.array([1, 2, 3, 4], np.uint32)
    words = []
    for _ in XOSHIRO_KAT:
        w, state = xoshiro128ss(state)
        words.append(int(w))
    assert words == XOSHIRO_KAT


def test_streams_follow_the_documented_layout():
    """The initial state is the Philox block of (0, photon lo, photon hi, stream) under the seed;
    the words are xoshiro128** from it (a scalar re-implementation of the update)."""
    seed, photon, stream = 2**40 + 3, 2**33 + 7, 5
    streams = PhotonStreams(seed, np.array([photon]), stream=stream)
    got = [int(streams.words(np.array([0]))[0]) for _ in range(8)]
    ctr = np.array([0, photon & 0xFFFFFFFF, photon >> 32, stream], np.uint32)
    s = [int(x) for x in philox4x32_10(ctr, seed_key(seed))]
    rotl = lambda x, k: ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF  # noqa: E731
    expected = []
    for _ in range(8):
        expected.append(rotl(s[1] * 5 & 0xFFFFFFFF, 7) * 9 & 0xFFFFFFFF)
        t = s[1] << 9 & 0xFFFFFFFF
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 11)  # noqa: E702
    assert got == expected


def test_photons_and_streams_get_different_numbers():
    a = PhotonStreams(1, np.arange(1000))
    b = PhotonStreams(1, np.arange(1000), stream=1)
    wa, wb = a.words(np.arange(1000)), b.words(np.arange(1000))
    assert len(set(wa.tolist())) > 995 and np.mean(wa == wb) < 0.01


def test_uniforms_are_uniform():
    streams = PhotonStreams(11, np.arange(20000))
    u = np.concatenate([streams.uniform(np.arange(20000)) for _ in range(5)])
    counts, _ = np.histogram(u, bins=20, range=(0, 1))
    expected = len(u) / 20
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert chi2 < 43.8  # chi-square 19 dof, p = 0.001


IDS = [0, 1, 2, 1000, 2**32 + 5, 123456789012]


def test_first_numbers_bit_identical_on_every_backend(backend):
    reference = get_backend("numpy")
    seed = 2**40 + 17
    words = get_backend(backend).rng_stream(seed, IDS, 13)
    assert np.array_equal(words, reference.rng_stream(seed, IDS, 13))
    uniforms = get_backend(backend).rng_stream(seed, IDS, 13, as_uniform=True)
    expected = reference.rng_stream(seed, IDS, 13, as_uniform=True).astype(np.float32)
    assert np.array_equal(np.asarray(uniforms, np.float32).view(np.uint32), expected.view(np.uint32))
