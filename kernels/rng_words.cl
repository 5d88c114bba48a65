/* Diagnostic: the first `count` random numbers of chosen photons, for the cross-backend check that
 * every backend draws bit-identical streams (tests/test_rng.py). as_uniform = 1 returns the float
 * uniforms' bit patterns instead of the raw words. */
PQ_KERNEL void pq_rng_words(PQ_GLOBAL const pq_u32 *ids, pq_u32 n, pq_u32 count, pq_u32 seed_lo,
                            pq_u32 seed_hi, pq_u32 as_uniform, PQ_GLOBAL float *uniforms,
                            PQ_GLOBAL pq_u32 *words)
{
    pq_u32 gid = PQ_THREAD_ID;
    if (gid >= n) return;
    pq_rng rng;
    pq_rng_init(&rng, seed_lo, seed_hi, (pq_u64)ids[2 * gid] | ((pq_u64)ids[2 * gid + 1] << 32), 0u);
    for (pq_u32 k = 0; k < count; ++k) {
        if (as_uniform) uniforms[gid * count + k] = pq_uniform(&rng);
        else words[gid * count + k] = pq_rng_word(&rng);
    }
}
