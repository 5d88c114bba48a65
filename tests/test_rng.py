"""Philox4x32-10: known-answer vectors and bit-identical streams on every backend."""

import numpy as np
import pytest

from photonqd.backends import get_backend
from photonqd.rng import PhotonStreams, philox4x32_10, seed_key, words_to_uniform

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


def test_streams_follow_the_documented_block_layout():
    seed, photon = 2**40 + 3, 2**33 + 7
    streams = PhotonStreams(seed, np.array([photon]))
    got = [int(streams.words(np.array([0]))[0]) for _ in range(8)]
    key = seed_key(seed)
    for block in range(2):
        ctr = np.array([block, photon & 0xFFFFFFFF, photon >> 32, 0], np.uint32)
        assert got[4 * block:4 * block + 4] == [int(x) for x in philox4x32_10(ctr, key)]


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
