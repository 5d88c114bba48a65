"""Philox4x32-10 counter-based random numbers, vectorised over photons (NumPy reference).

Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11 (Random123). The kernel in
``kernels/philox.h`` implements the same function; both are keyed by the run's 64-bit seed and
count blocks per photon, so a photon draws the same numbers on every backend and device.

Block layout (shared with the kernel):
  key     = (seed & 0xffffffff, seed >> 32)
  counter = (block index within the photon's stream, photon index low word, photon index high word,
             stream id)
Each block yields four 32-bit words, consumed in order. A word ``x`` becomes the uniform
``((x >> 9) * 2 + 1) * 2**-24`` in (0, 1): exactly representable in float32, never 0 or 1, so
``-log(u)`` and ``1/u`` are always finite.
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


def words_to_uniform(words: np.ndarray) -> np.ndarray:
    """Map uint32 words to uniforms in (0, 1), identically to the kernel's ``pq_uniform``."""
    w = np.asarray(words, dtype=np.uint32)
    return ((w >> np.uint32(9)).astype(np.float64) * 2.0 + 1.0) * 2.0**-24


def seed_key(seed: int) -> np.ndarray:
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed}")
    return np.array([int(seed) & 0xFFFFFFFF, int(seed) >> 32], dtype=np.uint32)


class PhotonStreams:
    """Per-photon random streams: photon ``p`` of the run draws words 0, 1, 2, … of its stream."""

    def __init__(self, seed: int, photon_ids: np.ndarray, stream: int = 0):
        self.key = seed_key(seed)
        ids = np.asarray(photon_ids, dtype=np.uint64)
        self.id_lo = (ids & _LOW32).astype(np.uint32)
        self.id_hi = (ids >> _SHIFT32).astype(np.uint32)
        self.stream = np.uint32(stream)
        self.drawn = np.zeros(ids.shape, dtype=np.int64)  # words consumed so far, per photon
        self.block = np.zeros(ids.shape + (4,), dtype=np.uint32)

    def words(self, idx: np.ndarray) -> np.ndarray:
        """Next word of the photons at positions ``idx`` (an integer index array)."""
        idx = np.asarray(idx, dtype=np.int64)
        n = self.drawn[idx]
        refill = idx[(n & 3) == 0]
        if refill.size:
            ctr = np.stack([
                (self.drawn[refill] >> 2).astype(np.uint32),
                self.id_lo[refill], self.id_hi[refill],
                np.full(refill.shape, self.stream, dtype=np.uint32),
            ], axis=-1)
            self.block[refill] = philox4x32_10(ctr, self.key)
        out = self.block[idx, n & 3]
        self.drawn[idx] = n + 1
        return out

    def uniform(self, idx: np.ndarray) -> np.ndarray:
        return words_to_uniform(self.words(idx))
