/* Test kernels: each runs one device function of transport.cl for photons first .. first + n - 1,
 * drawing from each photon's own random stream (seed, photon index, stream) as pq_transport does,
 * and writes what the function produced. Compiled after transport.cl
 * (KernelPlan.source_text(prelude, extra=("test_functions.cl",))); photonqd/device_functions.py
 * runs them, and their NumPy reference equivalents, for tests/test_samplers.py. */

/* pq_scatter at asymmetry g of photons travelling along u_in[0..2]; u_out: [photon][ux, uy, uz]. */
PQ_KERNEL void pq_test_scatter(PQ_GLOBAL const float *u_in, float g, pq_u32 seed_lo, pq_u32 seed_hi,
                               pq_u32 stream, pq_u32 n, PQ_GLOBAL float *u_out)
{
    pq_u32 gid = PQ_THREAD_ID;
    if (gid < n) {
        pq_rng rng;
        pq_rng_init(&rng, seed_lo, seed_hi, (pq_u64)gid, stream);
        pq_photon ph;
        ph.ux = u_in[0]; ph.uy = u_in[1]; ph.uz = u_in[2];
        pq_label lab;
        pq_label_hg(&lab, g);
        pq_scatter(&ph, &lab, &rng);
        u_out[3 * gid] = ph.ux; u_out[3 * gid + 1] = ph.uy; u_out[3 * gid + 2] = ph.uz;
    }
}

/* pq_isotropic; u_out: [photon][ux, uy, uz]. */
PQ_KERNEL void pq_test_isotropic(pq_u32 seed_lo, pq_u32 seed_hi, pq_u32 stream, pq_u32 n,
                                 PQ_GLOBAL float *u_out)
{
    pq_u32 gid = PQ_THREAD_ID;
    if (gid < n) {
        pq_rng rng;
        pq_rng_init(&rng, seed_lo, seed_hi, (pq_u64)gid, stream);
        pq_photon ph;
        pq_isotropic(&ph, &rng);
        u_out[3 * gid] = ph.ux; u_out[3 * gid + 1] = ph.uy; u_out[3 * gid + 2] = ph.uz;
    }
}

/* pq_launch of the plan's source, with pq_transport's arguments (bound like it) and photons
 * initialised as pq_photon_run does; sample_out: [photon][LAUNCH_SAMPLE_FIELDS]. */
PQ_KERNEL void pq_test_launch(PQ_TRANSPORT_PARAMS, PQ_GLOBAL float *sample_out)
{
    pq_buffers buf;
    PQ_BIND_BUFFERS(buf);
    pq_u32 gid = PQ_THREAD_ID;
    if (gid < n_photons) {
        pq_u64 photon = (((pq_u64)first_hi << 32) | (pq_u64)first_lo) + (pq_u64)gid;
        pq_rng rng;
        pq_rng_init(&rng, seed_lo, seed_hi, photon, (pq_u32)ip[IP_STREAM]);
        pq_photon ph;
        ph.w = 1.0f; ph.t = 0.0f; ph.s = 0.0f;
        ph.ix = -1; ph.iy = -1; ph.iz = -1;
        ph.bin = ip[IP_SRC_BIN];
        pq_launch(&ph, &buf, &rng);
        PQ_GLOBAL float *row = sample_out + (pq_u64)gid * PQ_LAUNCH_SAMPLE_WIDTH;
        row[0] = ph.x; row[1] = ph.y; row[2] = ph.z;
        row[3] = ph.ux; row[4] = ph.uy; row[5] = ph.uz;
        row[6] = (float)ph.bin;
        row[7] = (float)ph.ix; row[8] = (float)ph.iy; row[9] = (float)ph.iz;
    }
}
