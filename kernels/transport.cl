/* photonqd voxel Monte Carlo transport: one source for OpenCL C and CUDA C++.
 *
 * Compiled after a backend prelude (prelude_opencl.h / prelude_cuda.h), philox.h and a block of
 * #defines written by photonqd/kernel_source.py: parameter indices (FP_*, IP_*), tally slots
 * (TALLY_*), event codes (EV_*) and feature switches (PQ_SOURCE, PQ_BC_*, PQ_SPECULAR,
 * PQ_TIME_GATE, PQ_FLUENCE, PQ_EXIT_MAP, PQ_TRACE, PQ_NSPECIES, PQ_RECORD).
 *
 * photonqd/backends/numpy_backend.py is the executable specification of this algorithm: both
 * consume random numbers in the same order (see "draw" comments), so a photon follows the same
 * path on every backend up to floating-point rounding.
 *
 * Units: mm, mm^-1, ns. Grid: voxel (i, j, k) spans [i dx, (i+1) dx) x ...; labels are stored
 * C-order, flat index (i * NY + j) * NZ + k. Label 0 is the ambient medium.
 */

#define PQ_C0 299.792458f            /* speed of light in vacuum, mm/ns */
#define PQ_FAR 3.0e38f
#define PQ_FIX_W 4294967296.0f       /* fixed point: 2^32 per unit photon weight */
#define PQ_FIX_L 16777216.0f         /* fixed point: 2^24 per unit weight x mm (track length) */
#define PQ_PI 3.14159265358979f

#define BC_ESCAPE 0
#define BC_MIRROR 1
#define BC_CYCLIC 2

#define SRC_PENCIL 0
#define SRC_GAUSSIAN 1
#define SRC_DISK 2
#define SRC_RECTANGLE 3
#define SRC_ISOTROPIC 4
#define SRC_EMISSION 5

typedef struct {
    float p[3];      /* position, mm */
    float u[3];      /* direction cosines */
    float inv_u[3];  /* 1 / u (0 where u = 0): the boundary search multiplies, never divides */
    int v[3];        /* voxel index */
    float w;         /* weight */
    float t;         /* time of flight, ns */
    float s;         /* remaining dimensionless scattering path */
    int label;
    int bin;         /* wavelength bin */
} pq_photon;

PQ_DEVICE void pq_direction_changed(pq_photon *ph)
{
    for (int a = 0; a < 3; ++a) ph->inv_u[a] = ph->u[a] != 0.0f ? 1.0f / ph->u[a] : 0.0f;
}

PQ_DEVICE void pq_flip(pq_photon *ph, int axis)
{
    ph->u[axis] = -ph->u[axis];
    ph->inv_u[axis] = -ph->inv_u[axis];
}

PQ_DEVICE int pq_face_bc(int face)
{
    switch (face) {
    case 0: return PQ_BC_XMIN;
    case 1: return PQ_BC_XMAX;
    case 2: return PQ_BC_YMIN;
    case 3: return PQ_BC_YMAX;
    case 4: return PQ_BC_ZMIN;
    default: return PQ_BC_ZMAX;
    }
}

PQ_DEVICE pq_i64 pq_fix_w(float w) { return PQ_TO_I64(w * PQ_FIX_W); }

PQ_DEVICE void pq_tally_add(PQ_GLOBAL pq_i64 *tally, int slot, pq_i64 v)
{
    if (v != 0) PQ_ATOMIC_ADD_I64(tally + slot, v);
}

/* Unpolarised Fresnel reflectance from n1 into n2 at incidence cosine cos_i; cos_t receives the
 * transmitted cosine. Total internal reflection returns 1. */
PQ_DEVICE float pq_fresnel(float n1, float n2, float cos_i, float *cos_t)
{
    float eta = n1 / n2;
    float sin_t2 = eta * eta * (1.0f - cos_i * cos_i);
    if (sin_t2 >= 1.0f) { *cos_t = 0.0f; return 1.0f; }
    float ct = PQ_SQRT(1.0f - sin_t2);
    *cos_t = ct;
    float rs = (n1 * cos_i - n2 * ct) / (n1 * cos_i + n2 * ct);
    float rp = (n1 * ct - n2 * cos_i) / (n1 * ct + n2 * cos_i);
    return 0.5f * (rs * rs + rp * rp);
}

/* Snell refraction through a face normal to `axis`: tangential components scale by n1/n2. */
PQ_DEVICE void pq_refract(pq_photon *ph, int axis, float eta, float cos_t)
{
    for (int a = 0; a < 3; ++a)
        ph->u[a] = (a == axis) ? (ph->u[a] > 0.0f ? cos_t : -cos_t) : ph->u[a] * eta;
    pq_direction_changed(ph);
}

PQ_DEVICE int pq_flat(const int *v, int ny, int nz) { return (v[0] * ny + v[1]) * nz + v[2]; }

/* Distance along u to the next face of the current voxel; `axis` receives the face's axis. */
PQ_DEVICE float pq_to_boundary(const pq_photon *ph, const float *d, int *axis)
{
    float best = PQ_FAR;
    int ax = 2;
    for (int a = 0; a < 3; ++a) {
        if (ph->u[a] == 0.0f) continue;
        float plane = (float)(ph->v[a] + (ph->u[a] > 0.0f ? 1 : 0)) * d[a];
        float dist = PQ_FMAX((plane - ph->p[a]) * ph->inv_u[a], 0.0f);
        if (dist < best) { best = dist; ax = a; }
    }
    *axis = ax;
    return best;
}

PQ_DEVICE void pq_move(pq_photon *ph, float dist)
{
    for (int a = 0; a < 3; ++a) ph->p[a] += dist * ph->u[a];
}

/* Henyey-Greenstein deflection and rotation of u (two draws: cos theta, then phi). */
PQ_DEVICE void pq_scatter(pq_photon *ph, float g, pq_rng *rng)
{
    float xi = pq_uniform(rng);                                  /* draw: cos theta */
    float ct;
    if (PQ_FABS(g) < 1.0e-6f) {
        ct = 2.0f * xi - 1.0f;
    } else {
        float f = (1.0f - g * g) / (1.0f - g + 2.0f * g * xi);
        ct = (1.0f + g * g - f * f) / (2.0f * g);
    }
    ct = PQ_FMIN(PQ_FMAX(ct, -1.0f), 1.0f);
    float st = PQ_SQRT(1.0f - ct * ct);
    float phi = PQ_PI * (2.0f * pq_uniform(rng) - 1.0f);         /* draw: phi */
    float cp = PQ_COS(phi), sp = PQ_SIN(phi);
    float ux = ph->u[0], uy = ph->u[1], uz = ph->u[2];
    if (PQ_FABS(uz) > 0.99999f) {
        ph->u[0] = st * cp;
        ph->u[1] = st * sp;
        ph->u[2] = uz > 0.0f ? ct : -ct;
    } else {
        float r = PQ_SQRT(1.0f - uz * uz);
        ph->u[0] = st * (ux * uz * cp - uy * sp) / r + ux * ct;
        ph->u[1] = st * (uy * uz * cp + ux * sp) / r + uy * ct;
        ph->u[2] = -st * cp * r + uz * ct;
    }
    float norm = 1.0f / PQ_SQRT(ph->u[0] * ph->u[0] + ph->u[1] * ph->u[1] + ph->u[2] * ph->u[2]);
    for (int a = 0; a < 3; ++a) ph->u[a] *= norm;
    pq_direction_changed(ph);
}

/* Position and direction from the source (draws as listed per source type). An emission source
 * (fluorescence) picks a voxel from an alias table over emitting voxels (em_u32: voxel indices,
 * then alias indices; em_f32: acceptance, then the wavelength-bin CDF). */
PQ_DEVICE void pq_launch(pq_photon *ph, PQ_GLOBAL const float *fp, PQ_GLOBAL const int *ip,
                         PQ_GLOBAL const pq_u32 *em_u32, PQ_GLOBAL const float *em_f32, pq_rng *rng)
{
    for (int a = 0; a < 3; ++a) {
        ph->p[a] = fp[FP_SRC_POS + a];
        ph->u[a] = fp[FP_SRC_DIR + a];
    }
#if PQ_SOURCE == SRC_GAUSSIAN || PQ_SOURCE == SRC_DISK
    float xi = pq_uniform(rng);                                  /* draw: radius */
    float phi = PQ_PI * (2.0f * pq_uniform(rng) - 1.0f);         /* draw: azimuth */
#if PQ_SOURCE == SRC_GAUSSIAN
    float r = fp[FP_SRC_SIZE] * PQ_SQRT(-0.5f * PQ_LOG(xi));     /* 1/e^2 intensity radius */
#else
    float r = fp[FP_SRC_SIZE] * PQ_SQRT(xi);
#endif
    float c = r * PQ_COS(phi), s = r * PQ_SIN(phi);
    for (int a = 0; a < 3; ++a) ph->p[a] += c * fp[FP_SRC_E1 + a] + s * fp[FP_SRC_E2 + a];
#elif PQ_SOURCE == SRC_RECTANGLE
    float xa = pq_uniform(rng);                                  /* draw: along edge 1 */
    float xb = pq_uniform(rng);                                  /* draw: along edge 2 */
    for (int a = 0; a < 3; ++a) ph->p[a] += xa * fp[FP_SRC_E1 + a] + xb * fp[FP_SRC_E2 + a];
#elif PQ_SOURCE == SRC_EMISSION
    int m = ip[IP_EM_COUNT];
    int k = (int)(pq_uniform(rng) * (float)m);                   /* draw: table entry */
    k = k < m - 1 ? k : m - 1;
    if (!(pq_uniform(rng) < em_f32[k])) k = (int)em_u32[m + k];  /* draw: accept or alias */
    int flat = (int)em_u32[k];
    int nyz = ip[IP_NY] * ip[IP_NZ];
    ph->v[0] = flat / nyz;
    ph->v[1] = (flat / ip[IP_NZ]) % ip[IP_NY];
    ph->v[2] = flat % ip[IP_NZ];
    const float d[3] = {fp[FP_DX], fp[FP_DY], fp[FP_DZ]};
    for (int a = 0; a < 3; ++a)                                  /* draw: x, y, z in the voxel */
        ph->p[a] = ((float)ph->v[a] + pq_uniform(rng)) * d[a];
    float ct = 2.0f * pq_uniform(rng) - 1.0f;                    /* draw: cos theta */
    float phi = PQ_PI * (2.0f * pq_uniform(rng) - 1.0f);         /* draw: phi */
    float st = PQ_SQRT(PQ_FMAX(1.0f - ct * ct, 0.0f));
    ph->u[0] = st * PQ_COS(phi);
    ph->u[1] = st * PQ_SIN(phi);
    ph->u[2] = ct;
    float xi = pq_uniform(rng);                                  /* draw: wavelength bin */
    int b = 0;
    while (b < ip[IP_NBIN] - 1 && xi > em_f32[m + b]) ++b;
    ph->bin = b;
#elif PQ_SOURCE == SRC_ISOTROPIC
    float ct = 2.0f * pq_uniform(rng) - 1.0f;                    /* draw: cos theta */
    float phi = PQ_PI * (2.0f * pq_uniform(rng) - 1.0f);         /* draw: phi */
    float st = PQ_SQRT(PQ_FMAX(1.0f - ct * ct, 0.0f));
    ph->u[0] = st * PQ_COS(phi);
    ph->u[1] = st * PQ_SIN(phi);
    ph->u[2] = ct;
#endif
    pq_direction_changed(ph);
}

/* Grid constants read once per thread. */
typedef struct {
    int nv[3];       /* voxels along x, y, z */
    float d[3];      /* voxel size, mm */
    float n_amb;     /* ambient refractive index */
    int nlabel;      /* labels per wavelength bin in the optics table */
} pq_grid;

typedef struct {
    PQ_GLOBAL float *buf;
    int slot;        /* this photon's row in the trace buffer, or -1 */
    int count;       /* events recorded so far */
} pq_tracer;

#if PQ_TRACE
PQ_DEVICE void pq_trace(pq_tracer *tr, const pq_photon *ph, int event)
{
    if (tr->slot < 0 || tr->count >= TRACE_LEN) return;
    PQ_GLOBAL float *rec = tr->buf + ((pq_u64)tr->slot * TRACE_LEN + (pq_u64)tr->count) * 8u;
    for (int a = 0; a < 3; ++a) { rec[a] = ph->p[a]; rec[3 + a] = ph->u[a]; }
    rec[6] = ph->w;
    rec[7] = (float)event;
    tr->count += 1;
}
#define PQ_TRACE_EVENT(ph, ev) pq_trace(tracer, (ph), (ev))
#else
#define PQ_TRACE_EVENT(ph, ev)
#endif

PQ_DEVICE int pq_label(PQ_GLOBAL const pq_u16 *labels, const pq_grid *grid, const int *v)
{
    return labels[pq_flat(v, grid->nv[1], grid->nv[2])];
}

/* Bring a launched photon into tissue. A start outside the box or on its surface moves to the
 * entry point; ambient voxels are crossed without interaction; entering from the ambient medium
 * applies the specular reflection (PQ_SPECULAR). Returns 0 if the photon never reaches tissue
 * (its weight is then tallied as missed or specular). */
PQ_DEVICE int pq_enter(pq_photon *ph, const pq_grid *grid, PQ_GLOBAL const pq_u16 *labels,
                       PQ_GLOBAL const float *optics, PQ_GLOBAL pq_i64 *tally, int off_scalar,
                       pq_tracer *tracer)
{
    int axis = 2;
    int from_ambient = 0;
    int inside = 1;
    for (int a = 0; a < 3; ++a)
        if (!(ph->p[a] > 0.0f && ph->p[a] < (float)grid->nv[a] * grid->d[a])) inside = 0;
    int reached = 1;
#if PQ_SOURCE == SRC_EMISSION
    inside = 1;   /* placed inside its voxel by pq_launch, even where rounding lands on a face */
#endif
    if (!inside) {
        float t_in = -PQ_FAR, t_out = PQ_FAR;
        int parallel_outside = 0;
        for (int a = 0; a < 3; ++a) {
            float hi = (float)grid->nv[a] * grid->d[a];
            if (ph->u[a] == 0.0f) {   /* parallel to this slab: inside it or never */
                if (ph->p[a] <= 0.0f || ph->p[a] >= hi) parallel_outside = 1;
                continue;
            }
            float t0 = -ph->p[a] / ph->u[a], t1 = (hi - ph->p[a]) / ph->u[a];
            float tn = PQ_FMIN(t0, t1), tf = PQ_FMAX(t0, t1);
            if (tn > t_in) { t_in = tn; axis = a; }
            t_out = PQ_FMIN(t_out, tf);
        }
        if (parallel_outside || t_out <= PQ_FMAX(t_in, 0.0f)) {
            reached = 0;
        } else {
            pq_move(ph, PQ_FMAX(t_in, 0.0f));
            ph->p[axis] = ph->u[axis] > 0.0f ? 0.0f : (float)grid->nv[axis] * grid->d[axis];
            from_ambient = 1;
        }
    }
    if (reached) {
#if PQ_SOURCE != SRC_EMISSION   /* an emission photon already knows its voxel */
        for (int a = 0; a < 3; ++a) {
            float f = ph->p[a] / grid->d[a];
            int i = (int)PQ_FLOOR(f);
            if ((float)i == f && ph->u[a] < 0.0f) i -= 1;   /* on a face: take the voxel ahead */
            ph->v[a] = i < 0 ? 0 : (i >= grid->nv[a] ? grid->nv[a] - 1 : i);
        }
#endif
        ph->label = pq_label(labels, grid, ph->v);
    }
    while (reached && ph->label == 0) {
        from_ambient = 1;
        float dist = pq_to_boundary(ph, grid->d, &axis);
        int step = ph->u[axis] > 0.0f ? 1 : -1;
        pq_move(ph, dist);
        ph->p[axis] = (float)(ph->v[axis] + (step > 0 ? 1 : 0)) * grid->d[axis];
        ph->v[axis] += step;
        if (ph->v[axis] < 0 || ph->v[axis] >= grid->nv[axis]) reached = 0;
        else ph->label = pq_label(labels, grid, ph->v);
    }
    if (!reached) {
        pq_tally_add(tally, off_scalar + TALLY_MISSED, pq_fix_w(ph->w));
        PQ_TRACE_EVENT(ph, EV_MISSED);
        return 0;
    }
#if PQ_SPECULAR
    float n_in = optics[(ph->bin * grid->nlabel + ph->label) * 4 + 3];
    if (from_ambient && n_in != grid->n_amb) {
        float cos_t;
        float r = pq_fresnel(grid->n_amb, n_in, PQ_FABS(ph->u[axis]), &cos_t);
        float w_in = ph->w * (1.0f - r);
        pq_tally_add(tally, off_scalar + TALLY_SPECULAR, pq_fix_w(ph->w) - pq_fix_w(w_in));
        ph->w = w_in;
        if (r >= 1.0f) {
            PQ_TRACE_EVENT(ph, EV_MISSED);
            return 0;
        }
        pq_refract(ph, axis, grid->n_amb / n_in, cos_t);
    }
#endif
    PQ_TRACE_EVENT(ph, EV_LAUNCH);
    return 1;
}

#if PQ_NSPECIES
/* Fluorophore absorption (1/mm) of each species in voxel `flat` at wavelength bin `bin`; returns
 * the sum. conc: (species, voxel) in µM; species_abs: (species, bin) in 1/mm per µM. */
PQ_DEVICE float pq_species_mua(PQ_GLOBAL const float *conc, PQ_GLOBAL const float *species_abs,
                               int flat, int bin, int n_voxels, int n_bins, float *mua_sp)
{
    float total = 0.0f;
    for (int sp = 0; sp < PQ_NSPECIES; ++sp) {
        mua_sp[sp] = conc[sp * n_voxels + flat] * species_abs[sp * n_bins + bin];
        total += mua_sp[sp];
    }
    return total;
}

/* Absorbed weight since the voxel was entered; each fluorophore species gets its share of it. */
#define PQ_SETTLE_ABSORBED() do {                                                              \
        pq_i64 dep_ = pq_fix_w(w_voxel) - pq_fix_w(ph->w);                                    \
        pq_tally_add(tally, flat, dep_);                                                       \
        float mua_all_ = optics[(ph->bin * grid->nlabel + ph->label) * 4] + mua_fluor;        \
        for (int sp = 0; sp < PQ_NSPECIES; ++sp)                                               \
            if (mua_sp[sp] > 0.0f)                                                             \
                pq_tally_add(tally, ip[IP_OFF_SPECIES] + sp * n_voxels + flat,                 \
                             PQ_TO_I64((float)dep_ * (mua_sp[sp] / mua_all_)));               \
    } while (0)
#else
#define PQ_SETTLE_ABSORBED() pq_tally_add(tally, flat, pq_fix_w(w_voxel) - pq_fix_w(ph->w))
#endif

#if PQ_EXIT_MAP
/* Score a photon leaving through z = 0 inside the acceptance cone into the exit map, weighted by
 * the detection efficiency of its wavelength bin, and keep it in the bounded record. */
PQ_DEVICE void pq_score_exit(const pq_photon *ph, PQ_GLOBAL const float *fp, PQ_GLOBAL const int *ip,
                             PQ_GLOBAL pq_i64 *tally, PQ_GLOBAL const float *bin_eff,
                             PQ_GLOBAL float *records)
{
    int px = (int)PQ_FLOOR((ph->p[0] - fp[FP_MAP_X0]) / fp[FP_MAP_PX]);
    int py = (int)PQ_FLOOR((ph->p[1] - fp[FP_MAP_Y0]) / fp[FP_MAP_PY]);
    if (px < 0 || px >= ip[IP_MAP_NX] || py < 0 || py >= ip[IP_MAP_NY]) return;
    pq_tally_add(tally, ip[IP_OFF_MAP] + px * ip[IP_MAP_NY] + py, pq_fix_w(ph->w * bin_eff[ph->bin]));
    pq_i64 slot = PQ_ATOMIC_ADD_I64(tally + ip[IP_OFF_SCALAR] + TALLY_DETECTED, 1);
#if PQ_RECORD
    if (slot < (pq_i64)ip[IP_RECORD_CAP]) {   /* beyond the capacity: counted, not stored */
        PQ_GLOBAL float *row = records + slot * 8;
        row[0] = ph->p[0]; row[1] = ph->p[1];
        row[2] = ph->u[0]; row[3] = ph->u[1]; row[4] = ph->u[2];
        row[5] = (float)ph->bin; row[6] = ph->w; row[7] = ph->t;
    }
#else
    (void)slot; (void)records;
#endif
}
#endif

/* Transport a photon in tissue until it leaves, is lost to roulette or the time gate closes. */
PQ_DEVICE void pq_propagate(pq_photon *ph, const pq_grid *grid, PQ_GLOBAL const pq_u16 *labels,
                            PQ_GLOBAL const float *optics, PQ_GLOBAL const float *fp,
                            PQ_GLOBAL const int *ip, PQ_GLOBAL pq_i64 *tally,
                            PQ_GLOBAL const float *conc, PQ_GLOBAL const float *species_abs,
                            PQ_GLOBAL const float *bin_eff, PQ_GLOBAL float *records,
                            pq_rng *rng, pq_tracer *tracer)
{
    const int off_scalar = ip[IP_OFF_SCALAR];
    int axis;
    int flat = pq_flat(ph->v, grid->nv[1], grid->nv[2]);
#if PQ_NSPECIES
    const int n_voxels = grid->nv[0] * grid->nv[1] * grid->nv[2];
    float mua_sp[PQ_NSPECIES];   /* fluorophore absorption in the current voxel, per species */
    float mua_fluor = pq_species_mua(conc, species_abs, flat, ph->bin, n_voxels, ip[IP_NBIN], mua_sp);
#else
    const float mua_fluor = 0.0f;
#endif
    float w_voxel = ph->w;      /* weight when the current voxel was entered (absorbed = difference) */
    float track = 0.0f;         /* weight x path length in the current voxel, for the fluence */
    int interactions = 0;
    int final_slot = -1;        /* scalar tally receiving the final weight, or -1 */

    for (;;) {
        if (ph->s <= 0.0f) ph->s = -PQ_LOG(pq_uniform(rng));   /* draw: free path */
        int o = (ph->bin * grid->nlabel + ph->label) * 4;
        float mua = optics[o] + mua_fluor, mus = optics[o + 1], g = optics[o + 2], n = optics[o + 3];

        float dist = pq_to_boundary(ph, grid->d, &axis);
        int event = EV_CROSS;
        if (mus > 0.0f && ph->s <= dist * mus) { dist = ph->s / mus; event = EV_SCATTER; }
#if PQ_TIME_GATE
        float d_gate = (fp[FP_T_GATE] - ph->t) * PQ_C0 / n;
        if (d_gate <= dist) { dist = PQ_FMAX(d_gate, 0.0f); event = EV_GATE; }
#endif
        pq_move(ph, dist);
        ph->t += dist * n / PQ_C0;
        float w_new = ph->w * PQ_EXP(-mua * dist);
#if PQ_FLUENCE
        /* track-length estimator: integral of the weight along the step */
        track += mua > 0.0f ? (ph->w - w_new) / mua : ph->w * dist;
#endif
        ph->w = w_new;
        ph->s = event == EV_SCATTER ? 0.0f : ph->s - dist * mus;

        if (event == EV_GATE) { final_slot = TALLY_ALIVE; PQ_TRACE_EVENT(ph, EV_GATE); break; }

        if (event == EV_SCATTER) {
            pq_scatter(ph, g, rng);
            interactions += 1;
            PQ_TRACE_EVENT(ph, EV_SCATTER);
            if (ph->w < fp[FP_ROULETTE_W]) {  /* unbiased Russian roulette; net weight tallied */
                PQ_SETTLE_ABSORBED();
                float m = fp[FP_ROULETTE_M];
                if (pq_uniform(rng) * m < 1.0f) {                 /* draw: roulette */
                    float w_up = ph->w * m;
                    pq_tally_add(tally, off_scalar + TALLY_ROULETTE, pq_fix_w(w_up) - pq_fix_w(ph->w));
                    ph->w = w_up;
                    w_voxel = w_up;
                } else {
                    pq_tally_add(tally, off_scalar + TALLY_ROULETTE, -pq_fix_w(ph->w));
                    w_voxel = 0.0f;
                    ph->w = 0.0f;
                    PQ_TRACE_EVENT(ph, EV_ROULETTE);
                    break;
                }
            }
            continue;
        }

        /* EV_CROSS: the photon is on the face of its voxel normal to `axis` */
        int step = ph->u[axis] > 0.0f ? 1 : -1;
        ph->p[axis] = (float)(ph->v[axis] + (step > 0 ? 1 : 0)) * grid->d[axis];
        int next = ph->v[axis] + step;
        int outside = next < 0 || next >= grid->nv[axis];
        int face = 2 * axis + (step > 0 ? 1 : 0);
        int bc = outside ? pq_face_bc(face) : BC_ESCAPE;
        if (outside && bc == BC_MIRROR) {
            pq_flip(ph, axis);
            PQ_TRACE_EVENT(ph, EV_REFLECT);
            continue;
        }
        if (outside && bc == BC_CYCLIC) { next = step > 0 ? 0 : grid->nv[axis] - 1; outside = 0; }
        int next_label = 0;
        if (!outside) {
            int keep = ph->v[axis];
            ph->v[axis] = next;
            next_label = pq_label(labels, grid, ph->v);
            ph->v[axis] = keep;
        }
        float n_next = next_label == 0 ? grid->n_amb : optics[(ph->bin * grid->nlabel + next_label) * 4 + 3];
        if (n_next != n) {
            float cos_t;
            float r = pq_fresnel(n, n_next, PQ_FABS(ph->u[axis]), &cos_t);
            if (pq_uniform(rng) < r) {                            /* draw: reflect or refract */
                pq_flip(ph, axis);
                PQ_TRACE_EVENT(ph, EV_REFLECT);
                continue;
            }
            pq_refract(ph, axis, n / n_next, cos_t);
        }
        if (next_label == 0) {   /* leaves through a box face or into an ambient voxel */
            final_slot = outside ? TALLY_ESCAPE + face : TALLY_ESCAPE_AMBIENT;
#if PQ_EXIT_MAP
            if (outside && face == 4 && -ph->u[2] >= fp[FP_MAP_COS])
                pq_score_exit(ph, fp, ip, tally, bin_eff, records);
#endif
            PQ_TRACE_EVENT(ph, EV_ESCAPE);
            break;
        }
        /* into the next voxel: settle this voxel's tallies first */
        PQ_SETTLE_ABSORBED();
#if PQ_FLUENCE
        pq_tally_add(tally, ip[IP_OFF_FLUENCE] + flat, PQ_TO_I64(track * PQ_FIX_L));
        track = 0.0f;
#endif
        w_voxel = ph->w;
        if (next != ph->v[axis] + step)   /* wrapped through a cyclic face */
            ph->p[axis] = step > 0 ? 0.0f : (float)grid->nv[axis] * grid->d[axis];
        ph->v[axis] = next;
        ph->label = next_label;
        flat = pq_flat(ph->v, grid->nv[1], grid->nv[2]);
#if PQ_NSPECIES
        mua_fluor = pq_species_mua(conc, species_abs, flat, ph->bin, n_voxels, ip[IP_NBIN], mua_sp);
#endif
        PQ_TRACE_EVENT(ph, EV_CROSS);
    }

    PQ_SETTLE_ABSORBED();
#if PQ_FLUENCE
    pq_tally_add(tally, ip[IP_OFF_FLUENCE] + flat, PQ_TO_I64(track * PQ_FIX_L));
#endif
    if (final_slot >= 0) pq_tally_add(tally, off_scalar + final_slot, pq_fix_w(ph->w));
    pq_tally_add(tally, off_scalar + TALLY_INTERACTIONS, (pq_i64)interactions);
}

/* No early `return` in the kernel body: PoCL 3.1's work-group vectoriser (loopvec) miscompiled
 * one, taking the wrong branch after it (tests/test_transport.py, rectangle source from air). */
PQ_KERNEL void pq_transport(PQ_GLOBAL const pq_u16 *labels,
                            PQ_GLOBAL const float *optics,   /* [bin][label][mua, mus, g, n] */
                            PQ_GLOBAL const float *fp,       /* float parameters, FP_* */
                            PQ_GLOBAL const int *ip,         /* integer parameters, IP_* */
                            PQ_GLOBAL pq_i64 *tally,
                            PQ_GLOBAL float *trace,
                            PQ_GLOBAL const pq_u32 *trace_ids,
                            PQ_GLOBAL const float *conc,         /* [species][voxel], µM */
                            PQ_GLOBAL const float *species_abs,  /* [species][bin], 1/mm per µM */
                            PQ_GLOBAL const pq_u32 *em_u32,      /* emission source tables */
                            PQ_GLOBAL const float *em_f32,
                            PQ_GLOBAL const float *bin_eff,      /* exit-map efficiency per bin */
                            PQ_GLOBAL float *records,            /* detected photons, 8 floats each */
                            pq_u32 seed_lo, pq_u32 seed_hi,
                            pq_u32 first_lo, pq_u32 first_hi, pq_u32 n_photons)
{
    pq_u32 gid = PQ_THREAD_ID;
    if (gid < n_photons) {
        pq_u64 photon = (((pq_u64)first_hi << 32) | (pq_u64)first_lo) + (pq_u64)gid;
        pq_grid grid;
        grid.nv[0] = ip[IP_NX]; grid.nv[1] = ip[IP_NY]; grid.nv[2] = ip[IP_NZ];
        grid.d[0] = fp[FP_DX]; grid.d[1] = fp[FP_DY]; grid.d[2] = fp[FP_DZ];
        grid.n_amb = fp[FP_N_AMBIENT];
        grid.nlabel = ip[IP_NLABEL];

        pq_tracer tracer;
        tracer.buf = trace; tracer.slot = -1; tracer.count = 0;
#if PQ_TRACE
        for (int i = 0; i < ip[IP_N_TRACE]; ++i)
            if ((pq_u64)trace_ids[2 * i] + ((pq_u64)trace_ids[2 * i + 1] << 32) == photon) tracer.slot = i;
#endif
        pq_rng rng;
        pq_rng_init(&rng, seed_lo, seed_hi, photon, (pq_u32)ip[IP_STREAM]);
        pq_photon ph;
        ph.w = 1.0f; ph.t = 0.0f; ph.s = 0.0f;
        ph.bin = ip[IP_SRC_BIN];
        pq_launch(&ph, fp, ip, em_u32, em_f32, &rng);
        if (pq_enter(&ph, &grid, labels, optics, tally, ip[IP_OFF_SCALAR], &tracer))
            pq_propagate(&ph, &grid, labels, optics, fp, ip, tally, conc, species_abs, bin_eff,
                         records, &rng, &tracer);
    }
}
