/* Per-photon random numbers, identical on every backend and launch configuration.
 *
 * A photon's stream is keyed by (seed, photon index, stream id): one Philox4x32-10 block
 * (Salmon et al., SC'11) of the counter (0, photon lo, photon hi, stream) under the key
 * (seed lo, seed hi) is the 128-bit initial state of a xoshiro128** generator (Blackman & Vigna,
 * "Scrambled linear pseudorandom number generators", ACM TOMS 47(4), 2021), which then yields the
 * photon's 32-bit words. Philox makes the streams of different photons independent without any
 * shared state; xoshiro128** draws each word for a fraction of a Philox block's cost (the
 * transport loop draws about three words per scattering event).
 * Must match photonqd/rng.py word for word. */
#define PQ_PHILOX_M0 0xD2511F53u
#define PQ_PHILOX_M1 0xCD9E8D57u
#define PQ_PHILOX_W0 0x9E3779B9u
#define PQ_PHILOX_W1 0xBB67AE85u

typedef struct {
    pq_u32 s0, s1, s2, s3;    /* xoshiro128** state */
} pq_rng;

/* Philox4x32-10 of counter (c0, c1, c2, c3) under key (k0, k1), into the generator's state. */
PQ_DEVICE void pq_philox_block(pq_rng *r, pq_u32 c0, pq_u32 c1, pq_u32 c2, pq_u32 c3, pq_u32 k0, pq_u32 k1)
{
    for (int round = 0; round < 10; ++round) {
        if (round) { k0 += PQ_PHILOX_W0; k1 += PQ_PHILOX_W1; }
        pq_u32 hi0 = PQ_MULHI(PQ_PHILOX_M0, c0), lo0 = PQ_PHILOX_M0 * c0;
        pq_u32 hi1 = PQ_MULHI(PQ_PHILOX_M1, c2), lo1 = PQ_PHILOX_M1 * c2;
        c0 = hi1 ^ c1 ^ k0; c1 = lo1; c2 = hi0 ^ c3 ^ k1; c3 = lo0;
    }
    r->s0 = c0; r->s1 = c1; r->s2 = c2; r->s3 = c3;
}

PQ_DEVICE void pq_rng_init(pq_rng *r, pq_u32 seed_lo, pq_u32 seed_hi, pq_u64 photon, pq_u32 stream)
{
    pq_philox_block(r, 0u, (pq_u32)(photon & 0xffffffffu), (pq_u32)(photon >> 32), stream, seed_lo, seed_hi);
    if ((r->s0 | r->s1 | r->s2 | r->s3) == 0u) r->s0 = 1u;   /* the one state xoshiro cannot leave */
}

PQ_DEVICE pq_u32 pq_rotl(pq_u32 x, int k) { return (x << k) | (x >> (32 - k)); }

/* xoshiro128**: output rotl(s1 * 5, 7) * 9, then the linear state update. */
PQ_DEVICE pq_u32 pq_rng_word(pq_rng *r)
{
    pq_u32 out = pq_rotl(r->s1 * 5u, 7) * 9u;
    pq_u32 t = r->s1 << 9;
    r->s2 ^= r->s0;
    r->s3 ^= r->s1;
    r->s1 ^= r->s2;
    r->s0 ^= r->s3;
    r->s2 ^= t;
    r->s3 = pq_rotl(r->s3, 11);
    return out;
}

/* uniform in (0, 1): ((w >> 9) * 2 + 1) * 2^-24, exact in float32, never 0 or 1 */
PQ_DEVICE float pq_uniform(pq_rng *r)
{
    return (float)((pq_rng_word(r) >> 9) * 2u + 1u) * 5.9604644775390625e-8f;
}
