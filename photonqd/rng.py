"""Per-photon random numbers, vectorised over photons (NumPy reference of kernels/rng.h).

A photon's stream is keyed by the run's 64-bit seed, the photon's 64-bit index and a stream id,
so a photon draws the same numbers on every backend, device and launch configuration:

  initial state = Philox4x32-10(counter = (0, photon index low word, photon index high word,
                                           stream id), key = (seed & 0xffffffff, seed >> 32))
  words         = xoshiro128** from that 128-bit state (an all-zero state becomes (1, 0, 0, 0))

Philox4x32-10: Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11 (Random123);
it makes the photons' streams independent without shared state. xoshiro128**: Blackman & Vigna,
"Scrambled linear pseudorandom number generators", ACM TOMS 47(4), 2021 (period 2^128 - 1,
passes BigCrush); it draws each word far cheaper than a Philox block.
A word ``x`` becomes the uniform ``((x >> 9) * 2 + 1) * 2**-24`` in (0, 1): exactly representable
in float32, never 0 or 1, so ``-log(u)`` and ``1/u`` are always finite.
"""

from __future__ import annotations

import numpy as np

PHILOX_M0 = np.uint64(0xD2511F53)
PHILOX_M1 = np.uint64(0xCD9E8D57)
PHILOX_W0 = np.uint32(0x9E3779B9)
PHILOX_W1 = np.uint32(0xBB67AE85)
_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)


def philox4x32_10(counter: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Philox4x32 with 10 rounds.

    counter: uint32 array shaped (..., 4); key: uint32 array shaped (..., 2) (broadcastable).
    Returns uint32 array shaped (..., 4).
    """
    c = np.array(counter, dtype=np.uint32, copy=True)
    k = np.array(np.broadcast_to(key, c.shape[:-1] + (2,)), dtype=np.uint32, copy=True)
    c0, c1, c2, c3 = (c[..., i] for i in range(4))
    k0, k1 = k[..., 0], k[..., 1]
    with np.errstate(over="ignore"):
        for r in range(10):
            if r:
                k0 = k0 + PHILOX_W0
                k1 = k1 + PHILOX_W1
            p0 = PHILOX_M0 * c0.astype(np.uint64)
            p1 = PHILOX_M1 * c2.astype(np.uint64)
            hi0 = (p0 >> _SHIFT32).astype(np.uint32)
            lo0 = (p0 & _LOW32).astype(np.uint32)
            hi1 = (p1 >> _SHIFT32).astype(np.uint32)
            lo1 = (p1 & _LOW32).astype(np.uint32)
            c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return np.stack([c0, c1, c2, c3], axis=-1)


def _rotl(x: np.ndarray, k: int) -> np.ndarray:
    return (x << np.uint32(k)) | (x >> np.uint32(32 - k))


def xoshiro128ss(state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One xoshiro128** step for each row of ``state`` (uint32, (..., 4)): (word, next state)."""
    s0, s1, s2, s3 = (state[..., i].copy() for i in range(4))
    with np.errstate(over="ignore"):
        out = _rotl(s1 * np.uint32(5), 7) * np.uint32(9)
        t = s1 << np.uint32(9)
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = _rotl(s3, 11)
    return out, np.stack([s0, s1, s2, s3], axis=-1)


def words_to_uniform(words: np.ndarray) -> np.ndarray:
    """Map uint32 words to uniforms in (0, 1), identically to the kernel's ``pq_uniform``."""
    w = np.asarray(words, dtype=np.uint32)
    return ((w >> np.uint32(9)).astype(np.float64) * 2.0 + 1.0) * 2.0**-24


def seed_key(seed: int) -> np.ndarray:
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed}")
    return np.array([int(seed) & 0xFFFFFFFF, int(seed) >> 32], dtype=np.uint32)


def initial_states(seed: int, photon_ids, stream: int = 0) -> np.ndarray:
    """The xoshiro128** state each photon starts from (uint32, (n, 4))."""
    ids = np.asarray(photon_ids, dtype=np.uint64)
    ctr = np.stack([np.zeros(ids.shape, np.uint32), (ids & _LOW32).astype(np.uint32),
                    (ids >> _SHIFT32).astype(np.uint32), np.full(ids.shape, stream, np.uint32)], axis=-1)
    state = philox4x32_10(ctr, seed_key(seed))
    state[np.all(state == 0, axis=-1), 0] = 1
    return state


class PhotonStreams:
    """Per-photon random streams: photon ``p`` of the run draws words 0, 1, 2, … of its stream."""

    def __init__(self, seed: int, photon_ids: np.ndarray, stream: int = 0):
        self.state = initial_states(seed, photon_ids, stream)
        self.drawn = np.zeros(len(self.state), dtype=np.int64)  # words consumed so far, per photon

    def words(self, idx: np.ndarray) -> np.ndarray:
        """Next word of the photons at positions ``idx`` (an integer index array)."""
        idx = np.asarray(idx, dtype=np.int64)
        out, self.state[idx] = xoshiro128ss(self.state[idx])
        self.drawn[idx] += 1
        return out

    def uniform(self, idx: np.ndarray) -> np.ndarray:
        return words_to_uniform(self.words(idx))
