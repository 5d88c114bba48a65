/* Philox4x32-10 (Salmon et al., SC'11), keyed by the run's seed, counted per photon.
 * Must match photonqd/rng.py word for word: counter = (block, photon lo, photon hi, stream). */
#define PQ_PHILOX_M0 0xD2511F53u
#define PQ_PHILOX_M1 0xCD9E8D57u
#define PQ_PHILOX_W0 0x9E3779B9u
#define PQ_PHILOX_W1 0xBB67AE85u

typedef struct {
    pq_u32 key0, key1;     /* seed */
    pq_u32 id0, id1;       /* photon index */
    pq_u32 stream;
    pq_u32 block;          /* next block to generate */
    pq_u32 used;           /* words of `word` already consumed (4 = empty) */
    pq_u32 word[4];
} pq_rng;

PQ_DEVICE void pq_philox_block(pq_rng *r)
{
    pq_u32 c0 = r->block, c1 = r->id0, c2 = r->id1, c3 = r->stream;
    pq_u32 k0 = r->key0, k1 = r->key1;
    for (int round = 0; round < 10; ++round) {
        if (round) { k0 += PQ_PHILOX_W0; k1 += PQ_PHILOX_W1; }
        pq_u32 hi0 = PQ_MULHI(PQ_PHILOX_M0, c0), lo0 = PQ_PHILOX_M0 * c0;
        pq_u32 hi1 = PQ_MULHI(PQ_PHILOX_M1, c2), lo1 = PQ_PHILOX_M1 * c2;
        c0 = hi1 ^ c1 ^ k0; c1 = lo1; c2 = hi0 ^ c3 ^ k1; c3 = lo0;
    }
    r->word[0] = c0; r->word[1] = c1; r->word[2] = c2; r->word[3] = c3;
    r->block += 1u;
    r->used = 0u;
}

PQ_DEVICE void pq_rng_init(pq_rng *r, pq_u32 seed_lo, pq_u32 seed_hi, pq_u64 photon, pq_u32 stream)
{
    r->key0 = seed_lo; r->key1 = seed_hi;
    r->id0 = (pq_u32)(photon & 0xffffffffu); r->id1 = (pq_u32)(photon >> 32);
    r->stream = stream; r->block = 0u; r->used = 4u;
}

PQ_DEVICE pq_u32 pq_rng_word(pq_rng *r)
{
    if (r->used == 4u) pq_philox_block(r);
    pq_u32 w = r->word[0];
    /* shift the block down instead of indexing with a variable: keeps it in registers */
    r->word[0] = r->word[1]; r->word[1] = r->word[2]; r->word[2] = r->word[3];
    r->used += 1u;
    return w;
}

/* uniform in (0, 1): ((w >> 9) * 2 + 1) * 2^-24, exact in float32, never 0 or 1 */
PQ_DEVICE float pq_uniform(pq_rng *r)
{
    return (float)((pq_rng_word(r) >> 9) * 2u + 1u) * 5.9604644775390625e-8f;
}
