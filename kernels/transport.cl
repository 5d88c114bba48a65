/* photonqd voxel Monte Carlo transport: one source for OpenCL C and CUDA C++.
 *
 * Compiled after a backend prelude (prelude_opencl.h / prelude_cuda.h), rng.h and a block of
 * #defines generated from photonqd/kernel_abi.py (every constant shared with Python: source and
 * boundary codes SRC_* / BC_*, parameter indices FP_* / IP_*, tally slots TALLY_*, event codes
 * EV_*, fixed-point scales, the speed of light, the parameter list PQ_TRANSPORT_PARAMS) and by
 * photonqd/kernel_source.py (feature switches PQ_SOURCE, PQ_BC_*, PQ_SPECULAR, PQ_FLUENCE,
 * PQ_EXIT_MAP, PQ_TRACE, PQ_NSPECIES, PQ_RECORD). No shared constant is written here by hand.
 *
 * photonqd/backends/reference.py is the executable specification of this algorithm: its functions
 * carry these functions' names in the same order, and both consume random numbers in the same
 * order (see "draw" comments), so a photon follows the same path on every backend up to
 * floating-point rounding.
 *
 * Units: mm, mm^-1, ns. Grid: voxel (i, j, k) spans [i dx, (i+1) dx) x ...; labels are stored
 * C-order, flat index (i * NY + j) * NZ + k. Label 0 is the ambient medium.
 */

#define PQ_FAR 3.0e38f
#define PQ_PI 3.14159265358979f

/* The read-only inputs and the outputs of a launch, bound once per thread (members generated from
 * photonqd.kernel_abi.KERNEL_ARGS), so device functions take one pointer instead of a dozen. */
typedef struct { PQ_BUFFER_MEMBERS } pq_buffers;

/* Photon and grid state are scalar fields, never arrays indexed by the face axis: a private array
 * indexed at run time lives in stack memory on CPUs (PoCL), scalars stay in registers. Per-axis
 * code selects a component with pq_pick / PQ_SET (branch-free selects). */
typedef struct {
    float x, y, z;       /* position, mm */
    float ux, uy, uz;    /* direction cosines */
    float rx, ry, rz;    /* 1 / u (0 where u = 0): the boundary search multiplies, never divides */
    int ix, iy, iz;      /* voxel index */
    float w;             /* weight */
    float t;             /* time of flight, ns */
    float s;             /* remaining dimensionless scattering path */
    int label;
    int bin;             /* wavelength bin */
} pq_photon;

/* Grid constants read once per thread. */
typedef struct {
    int nx, ny, nz;      /* voxels along x, y, z */
    float dx, dy, dz;    /* voxel size, mm */
    float n_amb;         /* ambient refractive index */
    int nlabel;          /* labels per wavelength bin in the optics table */
} pq_grid;

PQ_DEVICE float pq_pick(float x, float y, float z, int axis) { return axis == 0 ? x : (axis == 1 ? y : z); }
PQ_DEVICE int pq_pick_i(int x, int y, int z, int axis) { return axis == 0 ? x : (axis == 1 ? y : z); }
#define PQ_SET(x, y, z, axis, value) do { \
        x = (axis) == 0 ? (value) : x; y = (axis) == 1 ? (value) : y; z = (axis) == 2 ? (value) : z; \
    } while (0)

PQ_DEVICE float pq_extent(const pq_grid *g, int axis)
{
    return (float)pq_pick_i(g->nx, g->ny, g->nz, axis) * pq_pick(g->dx, g->dy, g->dz, axis);
}

PQ_DEVICE float pq_recip(float u) { return u != 0.0f ? 1.0f / u : 0.0f; }

PQ_DEVICE void pq_direction_changed(pq_photon *ph)
{
    ph->rx = pq_recip(ph->ux);
    ph->ry = pq_recip(ph->uy);
    ph->rz = pq_recip(ph->uz);
}

PQ_DEVICE void pq_flip(pq_photon *ph, int axis)
{
    PQ_SET(ph->ux, ph->uy, ph->uz, axis, -pq_pick(ph->ux, ph->uy, ph->uz, axis));
    PQ_SET(ph->rx, ph->ry, ph->rz, axis, -pq_pick(ph->rx, ph->ry, ph->rz, axis));
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
    float normal = pq_pick(ph->ux, ph->uy, ph->uz, axis) > 0.0f ? cos_t : -cos_t;
    ph->ux *= eta; ph->uy *= eta; ph->uz *= eta;
    PQ_SET(ph->ux, ph->uy, ph->uz, axis, normal);
    pq_direction_changed(ph);
}

/* Coordinate of the face ahead along one axis: the voxel's upper face when moving up. */
PQ_DEVICE float pq_plane(int i, float u, float d) { return (float)(i + (u > 0.0f ? 1 : 0)) * d; }

/* Distance along one axis to the face ahead; PQ_FAR when moving parallel to it. */
PQ_DEVICE float pq_face_dist(float p, float u, float r, int i, float d)
{
    return u != 0.0f ? PQ_FMAX((pq_plane(i, u, d) - p) * r, 0.0f) : PQ_FAR;
}

/* Distance along u to the next face of the current voxel; `axis` receives the face's axis (the
 * first axis on ties). */
PQ_DEVICE float pq_to_boundary(const pq_photon *ph, const pq_grid *g, int *axis)
{
    float bx = pq_face_dist(ph->x, ph->ux, ph->rx, ph->ix, g->dx);
    float by = pq_face_dist(ph->y, ph->uy, ph->ry, ph->iy, g->dy);
    float bz = pq_face_dist(ph->z, ph->uz, ph->rz, ph->iz, g->dz);
    float best = PQ_FAR;
    int ax = 2;
    if (bx < best) { best = bx; ax = 0; }
    if (by < best) { best = by; ax = 1; }
    if (bz < best) { best = bz; ax = 2; }
    *axis = ax;
    return best;
}

PQ_DEVICE void pq_move(pq_photon *ph, float dist)
{
    ph->x += dist * ph->ux;
    ph->y += dist * ph->uy;
    ph->z += dist * ph->uz;
}

/* The optical properties of the label a photon is in, with what its steps derive from them,
 * computed once when the photon enters the label rather than at every step. */
typedef struct {
    float mua, mus, g, n;
    float inv_mua, inv_mus;      /* 1 / mua, 1 / mus (0 where they are 0) */
    float c_n, n_c;              /* speed in the label (mm/ns) and its inverse */
    float hg_a, hg_b, hg_c;      /* Henyey-Greenstein: 1 - g^2, 1 - g, 2 g */
    float hg_d, hg_e;            /* 1 + g^2, 1 / (2 g) (0 for isotropic scattering) */
} pq_label;

/* The Henyey-Greenstein constants of asymmetry g. */
PQ_DEVICE void pq_label_hg(pq_label *l, float g)
{
    l->g = g;
    l->hg_a = 1.0f - g * g; l->hg_b = 1.0f - g; l->hg_c = 2.0f * g;
    l->hg_d = 1.0f + g * g; l->hg_e = PQ_FABS(g) < 1.0e-6f ? 0.0f : 1.0f / (2.0f * g);
}

PQ_DEVICE void pq_label_load(pq_label *l, PQ_GLOBAL const float *opt, int label)
{
    l->mua = opt[label * 4]; l->mus = opt[label * 4 + 1]; l->n = opt[label * 4 + 3];
    l->inv_mua = pq_recip(l->mua); l->inv_mus = pq_recip(l->mus);
    l->c_n = PQ_C0 / l->n; l->n_c = l->n / PQ_C0;
    pq_label_hg(l, opt[label * 4 + 2]);
}

/* Henyey-Greenstein deflection and rotation of u (two draws: cos theta, then phi). */
PQ_DEVICE void pq_scatter(pq_photon *ph, const pq_label *l, pq_rng *rng)
{
    float xi = pq_uniform(rng);                                  /* draw: cos theta */
    float ct;
    if (l->hg_e == 0.0f) {
        ct = 2.0f * xi - 1.0f;
    } else {
        float f = l->hg_a / (l->hg_b + l->hg_c * xi);
        ct = (l->hg_d - f * f) * l->hg_e;
    }
    ct = PQ_FMIN(PQ_FMAX(ct, -1.0f), 1.0f);
    float st = PQ_SQRT(1.0f - ct * ct);
    float phi = PQ_PI * (2.0f * pq_uniform(rng) - 1.0f);         /* draw: phi */
    float cp, sp;
    PQ_SINCOS(phi, &sp, &cp);
    float ux = ph->ux, uy = ph->uy, uz = ph->uz;
    if (PQ_FABS(uz) > 0.99999f) {
        ux = st * cp;
        uy = st * sp;
        uz = uz > 0.0f ? ct : -ct;
    } else {
        float r = PQ_SQRT(1.0f - uz * uz);
        float q = st / r;
        ux = q * (ph->ux * ph->uz * cp - ph->uy * sp) + ph->ux * ct;
        uy = q * (ph->uy * ph->uz * cp + ph->ux * sp) + ph->uy * ct;
        uz = -st * cp * r + ph->uz * ct;
    }
    float norm = 1.0f / PQ_SQRT(ux * ux + uy * uy + uz * uz);
    ph->ux = ux * norm;
    ph->uy = uy * norm;
    ph->uz = uz * norm;
    pq_direction_changed(ph);
}

/* A direction uniform on the sphere (two draws: cos theta, then phi). */
PQ_DEVICE void pq_isotropic(pq_photon *ph, pq_rng *rng)
{
    float ct = 2.0f * pq_uniform(rng) - 1.0f;                    /* draw: cos theta */
    float phi = PQ_PI * (2.0f * pq_uniform(rng) - 1.0f);         /* draw: phi */
    float st = PQ_SQRT(PQ_FMAX(1.0f - ct * ct, 0.0f));
    float cp, sp;
    PQ_SINCOS(phi, &sp, &cp);
    ph->ux = st * cp;
    ph->uy = st * sp;
    ph->uz = ct;
}

/* A direction about +z uniform in projected solid angle (cos theta dOmega) inside the cone
 * sin^2 theta <= sin2_max: sin^2 theta is uniform in [0, sin2_max] (two draws: sin^2 theta, phi). */
PQ_DEVICE void pq_cone(pq_photon *ph, float sin2_max, pq_rng *rng)
{
    float s2 = sin2_max * pq_uniform(rng);                       /* draw: sin^2 theta */
    float phi = PQ_PI * (2.0f * pq_uniform(rng) - 1.0f);         /* draw: phi */
    float st = PQ_SQRT(s2);
    float cp, sp;
    PQ_SINCOS(phi, &sp, &cp);
    ph->ux = st * cp;
    ph->uy = st * sp;
    ph->uz = PQ_SQRT(1.0f - s2);
}

/* A wavelength bin from the CDF em_f32[m .. m + NBIN - 1]: the first bin whose CDF reaches xi. */
PQ_DEVICE int pq_draw_bin(const pq_buffers *b, int m, pq_rng *rng)
{
    float xi = pq_uniform(rng);                                  /* draw: wavelength bin */
    int bin = 0;
    while (bin < b->ip[IP_NBIN] - 1 && xi > b->em_f32[m + bin]) ++bin;
    return bin;
}

/* Position and direction from the source (draws as listed per source type). An emission source
 * (fluorescence) picks a voxel from an alias table over emitting voxels (em_u32: voxel indices,
 * then alias indices; em_f32: acceptance, then the wavelength-bin CDF). The camera source (the
 * adjoint launch) starts on the z = 0 face, uniform over its footprint (a rectangle, or a point
 * when both edges are zero), into the detector's cone, in a bin drawn from the CDF in em_f32. */
PQ_DEVICE void pq_launch(pq_photon *ph, const pq_buffers *b, pq_rng *rng)
{
    PQ_GLOBAL const float *fp = b->fp;
    ph->x = fp[FP_SRC_POS]; ph->y = fp[FP_SRC_POS + 1]; ph->z = fp[FP_SRC_POS + 2];
    ph->ux = fp[FP_SRC_DIR]; ph->uy = fp[FP_SRC_DIR + 1]; ph->uz = fp[FP_SRC_DIR + 2];
#if PQ_SOURCE == SRC_GAUSSIAN || PQ_SOURCE == SRC_DISK
    float xi = pq_uniform(rng);                                  /* draw: radius */
    float phi = PQ_PI * (2.0f * pq_uniform(rng) - 1.0f);         /* draw: azimuth */
#if PQ_SOURCE == SRC_GAUSSIAN
    float r = fp[FP_SRC_SIZE] * PQ_SQRT(-0.5f * PQ_LOG(xi));     /* 1/e^2 intensity radius */
#else
    float r = fp[FP_SRC_SIZE] * PQ_SQRT(xi);
#endif
    float c, s;
    PQ_SINCOS(phi, &s, &c);
    c *= r;
    s *= r;
#elif PQ_SOURCE == SRC_RECTANGLE || PQ_SOURCE == SRC_CAMERA
    float c = pq_uniform(rng);                                   /* draw: along edge 1 */
    float s = pq_uniform(rng);                                   /* draw: along edge 2 */
#endif
#if PQ_SOURCE == SRC_GAUSSIAN || PQ_SOURCE == SRC_DISK || PQ_SOURCE == SRC_RECTANGLE || PQ_SOURCE == SRC_CAMERA
    ph->x += c * fp[FP_SRC_E1] + s * fp[FP_SRC_E2];
    ph->y += c * fp[FP_SRC_E1 + 1] + s * fp[FP_SRC_E2 + 1];
    ph->z += c * fp[FP_SRC_E1 + 2] + s * fp[FP_SRC_E2 + 2];
#if PQ_SOURCE == SRC_CAMERA
    pq_cone(ph, fp[FP_SRC_SIN2], rng);
    ph->bin = pq_draw_bin(b, 0, rng);
#endif
#elif PQ_SOURCE == SRC_ISOTROPIC
    pq_isotropic(ph, rng);
#elif PQ_SOURCE == SRC_EMISSION
    PQ_GLOBAL const int *ip = b->ip;
    int m = ip[IP_EM_COUNT];
    int k = (int)(pq_uniform(rng) * (float)m);                   /* draw: table entry */
    k = k < m - 1 ? k : m - 1;
    if (!(pq_uniform(rng) < b->em_f32[k])) k = (int)b->em_u32[m + k];  /* draw: accept or alias */
    int flat = (int)b->em_u32[k];
    ph->ix = flat / (ip[IP_NY] * ip[IP_NZ]);
    ph->iy = (flat / ip[IP_NZ]) % ip[IP_NY];
    ph->iz = flat % ip[IP_NZ];
    ph->x = ((float)ph->ix + pq_uniform(rng)) * fp[FP_DX];       /* draw: x, y, z in the voxel */
    ph->y = ((float)ph->iy + pq_uniform(rng)) * fp[FP_DY];
    ph->z = ((float)ph->iz + pq_uniform(rng)) * fp[FP_DZ];
    pq_isotropic(ph, rng);
    ph->bin = pq_draw_bin(b, m, rng);
#endif
    pq_direction_changed(ph);
}

typedef struct {
    PQ_GLOBAL float *buf;
    int slot;        /* this photon's row in the trace buffer, or -1 */
    int count;       /* events recorded so far */
} pq_tracer;

#if PQ_TRACE
PQ_DEVICE void pq_trace(pq_tracer *tr, const pq_photon *ph, int event)
{
    if (tr->slot < 0 || tr->count >= TRACE_LEN) return;
    PQ_GLOBAL float *rec = tr->buf + ((pq_u64)tr->slot * TRACE_LEN + (pq_u64)tr->count) * PQ_TRACE_WIDTH;
    rec[0] = ph->x; rec[1] = ph->y; rec[2] = ph->z;
    rec[3] = ph->ux; rec[4] = ph->uy; rec[5] = ph->uz;
    rec[6] = ph->w;
    rec[7] = (float)event;
    tr->count += 1;
}
#define PQ_TRACE_EVENT(ph, ev) pq_trace(tracer, (ph), (ev))
#else
#define PQ_TRACE_EVENT(ph, ev)
#endif

PQ_DEVICE int pq_flat(const pq_photon *ph, const pq_grid *g) { return (ph->ix * g->ny + ph->iy) * g->nz + ph->iz; }

/* Voxel index along one axis of a point at coordinate p on the grid; on a face, the voxel ahead. */
PQ_DEVICE int pq_voxel_index(float p, float u, float d, int n)
{
    float f = p / d;
    int i = (int)PQ_FLOOR(f);
    if ((float)i == f && u < 0.0f) i -= 1;
    return i < 0 ? 0 : (i >= n ? n - 1 : i);
}

/* Bring a launched photon into tissue. A start outside the box or on its surface moves to the
 * entry point; ambient voxels are crossed without interaction; entering from the ambient medium
 * applies the specular reflection (PQ_SPECULAR). Returns 0 if the photon never reaches tissue
 * (its weight is then tallied as missed or specular). */
PQ_DEVICE int pq_enter(pq_photon *ph, const pq_grid *grid, const pq_buffers *b, pq_tracer *tracer)
{
    PQ_GLOBAL pq_i64 *scalars = b->tally + b->ip[IP_OFF_SCALAR];
    int axis = 2;
    int from_ambient = 0;
    int inside = 1;
    for (int a = 0; a < 3; ++a) {
        float p = pq_pick(ph->x, ph->y, ph->z, a);
        if (!(p > 0.0f && p < pq_extent(grid, a))) inside = 0;
    }
    int reached = 1;
#if PQ_SOURCE == SRC_EMISSION
    inside = 1;   /* placed inside its voxel by pq_launch, even where rounding lands on a face */
#endif
    if (!inside) {
        float t_in = -PQ_FAR, t_out = PQ_FAR;
        int parallel_outside = 0;
        for (int a = 0; a < 3; ++a) {
            float hi = pq_extent(grid, a);
            float p = pq_pick(ph->x, ph->y, ph->z, a), u = pq_pick(ph->ux, ph->uy, ph->uz, a);
            if (u == 0.0f) {   /* parallel to this slab: inside it or never */
                if (p <= 0.0f || p >= hi) parallel_outside = 1;
                continue;
            }
            float t0 = -p / u, t1 = (hi - p) / u;
            float tn = PQ_FMIN(t0, t1), tf = PQ_FMAX(t0, t1);
            if (tn > t_in) { t_in = tn; axis = a; }
            t_out = PQ_FMIN(t_out, tf);
        }
        if (parallel_outside || t_out <= PQ_FMAX(t_in, 0.0f)) {
            reached = 0;
        } else {
            pq_move(ph, PQ_FMAX(t_in, 0.0f));
            PQ_SET(ph->x, ph->y, ph->z, axis,
                   pq_pick(ph->ux, ph->uy, ph->uz, axis) > 0.0f ? 0.0f : pq_extent(grid, axis));
            from_ambient = 1;
        }
    }
    if (reached) {
#if PQ_SOURCE != SRC_EMISSION   /* an emission photon already knows its voxel */
        ph->ix = pq_voxel_index(ph->x, ph->ux, grid->dx, grid->nx);
        ph->iy = pq_voxel_index(ph->y, ph->uy, grid->dy, grid->ny);
        ph->iz = pq_voxel_index(ph->z, ph->uz, grid->dz, grid->nz);
#endif
        ph->label = b->labels[pq_flat(ph, grid)];
    }
    while (reached && ph->label == 0) {
        from_ambient = 1;
        float dist = pq_to_boundary(ph, grid, &axis);
        float u = pq_pick(ph->ux, ph->uy, ph->uz, axis);
        int i = pq_pick_i(ph->ix, ph->iy, ph->iz, axis);
        int next = i + (u > 0.0f ? 1 : -1);
        pq_move(ph, dist);
        PQ_SET(ph->x, ph->y, ph->z, axis, pq_plane(i, u, pq_pick(grid->dx, grid->dy, grid->dz, axis)));
        PQ_SET(ph->ix, ph->iy, ph->iz, axis, next);
        if (next < 0 || next >= pq_pick_i(grid->nx, grid->ny, grid->nz, axis)) reached = 0;
        else ph->label = b->labels[pq_flat(ph, grid)];
    }
    if (!reached) {
        pq_tally_add(scalars, TALLY_MISSED, pq_fix_w(ph->w));
        PQ_TRACE_EVENT(ph, EV_MISSED);
        return 0;
    }
#if PQ_SPECULAR
    float n_in = b->optics[(ph->bin * grid->nlabel + ph->label) * 4 + 3];
    if (from_ambient && n_in != grid->n_amb) {
        float cos_t;
        float r = pq_fresnel(grid->n_amb, n_in, PQ_FABS(pq_pick(ph->ux, ph->uy, ph->uz, axis)), &cos_t);
        float w_in = ph->w * (1.0f - r);
        pq_tally_add(scalars, TALLY_SPECULAR, pq_fix_w(ph->w) - pq_fix_w(w_in));
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

/* The voxel a photon is in, with what it owes the tallies since it entered: the fixed-point
 * weight at entry (absorbed = entry - now), the weighted track length (fluence) and the voxel's
 * absorption, per fluorophore species too. Settled when the photon leaves the voxel or ends. */
typedef struct {
    int flat;
    int off_fluence;     /* start of this photon's fluence volume (its wavelength bin's band) */
    pq_i64 fix_entry;
    float track;
    float mua, inv_mua;
#if PQ_NSPECIES
    float mua_sp[PQ_NSPECIES];
#endif
} pq_voxel_acc;

/* Enter voxel `flat` with weight fix_w: absorption there = the tissue's plus each fluorophore
 * species' (concentration x absorption per µM at the photon's wavelength bin). */
PQ_DEVICE void pq_voxel_enter(pq_voxel_acc *acc, const pq_buffers *b, int flat, int n_voxels,
                              int bin, const pq_label *lab, pq_i64 fix_w)
{
    acc->flat = flat;
    acc->fix_entry = fix_w;
    acc->track = 0.0f;
    acc->mua = lab->mua;
#if PQ_NSPECIES
    for (int sp = 0; sp < PQ_NSPECIES; ++sp) {
        acc->mua_sp[sp] = b->species_conc[sp * n_voxels + flat] * b->species_mua[sp * b->ip[IP_NBIN] + bin];
        acc->mua += acc->mua_sp[sp];
    }
    acc->inv_mua = pq_recip(acc->mua);
#else
    acc->inv_mua = lab->inv_mua;   /* the label's: no division per voxel crossing */
#endif
}

/* Settle the voxel's tallies with the photon's weight now (fixed point): absorbed weight, each
 * species' share mu_a,species / mu_a of it, and the fluence track. */
PQ_DEVICE void pq_settle(pq_voxel_acc *acc, const pq_buffers *b, int n_voxels, pq_i64 fix_now)
{
    pq_i64 deposit = acc->fix_entry - fix_now;
    pq_tally_add(b->tally, acc->flat, deposit);
#if PQ_NSPECIES
    for (int sp = 0; sp < PQ_NSPECIES; ++sp)
        if (acc->mua_sp[sp] > 0.0f)
            pq_tally_add(b->tally, b->ip[IP_OFF_SPECIES] + sp * n_voxels + acc->flat,
                         PQ_TO_I64((float)deposit * (acc->mua_sp[sp] / acc->mua)));
#endif
#if PQ_FLUENCE
    pq_tally_add(b->tally, acc->off_fluence + acc->flat, PQ_TO_I64(acc->track * PQ_FIX_L));
#endif
    (void)n_voxels;
}

#if PQ_EXIT_MAP
/* Score a photon leaving through z = 0 inside the acceptance cone into the exit map, weighted by
 * the detection efficiency of its wavelength bin, and keep it in the bounded record. */
PQ_DEVICE void pq_score_exit(const pq_photon *ph, const pq_buffers *b)
{
    PQ_GLOBAL const float *fp = b->fp;
    PQ_GLOBAL const int *ip = b->ip;
    int px = (int)PQ_FLOOR((ph->x - fp[FP_MAP_X0]) / fp[FP_MAP_PX]);
    int py = (int)PQ_FLOOR((ph->y - fp[FP_MAP_Y0]) / fp[FP_MAP_PY]);
    if (px < 0 || px >= ip[IP_MAP_NX] || py < 0 || py >= ip[IP_MAP_NY]) return;
    pq_tally_add(b->tally, ip[IP_OFF_MAP] + px * ip[IP_MAP_NY] + py, pq_fix_w(ph->w * b->bin_eff[ph->bin]));
    pq_i64 slot = PQ_ATOMIC_ADD_I64(b->tally + ip[IP_OFF_SCALAR] + TALLY_DETECTED, 1);
#if PQ_RECORD
    if (slot < (pq_i64)ip[IP_RECORD_CAP]) {   /* beyond the capacity: counted, not stored */
        PQ_GLOBAL float *row = b->records + slot * PQ_RECORD_WIDTH;
        row[0] = ph->x; row[1] = ph->y;
        row[2] = ph->ux; row[3] = ph->uy; row[4] = ph->uz;
        row[5] = (float)ph->bin; row[6] = ph->w; row[7] = ph->t;
    }
#else
    (void)slot;
#endif
}
#endif

/* Transport a photon in tissue until it leaves, is lost to roulette, the time gate closes or a
 * guard stops it (flight time: the gate's GATE_SLOT; loop iterations: MAX_STEPS; net roulette
 * gain: PQ_MAX_ROULETTE_GAIN), so that every photon ends whatever the input. */
PQ_DEVICE void pq_propagate(pq_photon *ph, const pq_grid *grid, const pq_buffers *b, pq_rng *rng,
                            pq_tracer *tracer)
{
    PQ_GLOBAL const float *fp = b->fp;
    PQ_GLOBAL const int *ip = b->ip;
    PQ_GLOBAL pq_i64 *scalars = b->tally + ip[IP_OFF_SCALAR];
    const int n_voxels = grid->nx * grid->ny * grid->nz;
    const int max_steps = ip[IP_MAX_STEPS];
    const float t_gate = fp[FP_T_GATE], roulette_w = fp[FP_ROULETTE_W], roulette_m = fp[FP_ROULETTE_M];
    /* this wavelength's rows of the optics table; a label's row is read when the photon enters it */
    PQ_GLOBAL const float *opt = b->optics + ph->bin * grid->nlabel * 4;
    pq_label lab;
    pq_label_load(&lab, opt, ph->label);
    const int stride_x = grid->ny * grid->nz, stride_y = grid->nz;
    pq_voxel_acc acc;
    acc.off_fluence = ip[IP_OFF_FLUENCE] + b->fluence_band[ph->bin] * n_voxels;
    pq_voxel_enter(&acc, b, pq_flat(ph, grid), n_voxels, ph->bin, &lab, pq_fix_w(ph->w));
    int interactions = 0, steps = 0;
    float gain = 0.0f;          /* net weight added by roulette survivals */
    int final_slot = -1;        /* scalar tally receiving the final weight, or -1 */

    for (;;) {
        if (ph->s <= 0.0f) ph->s = -PQ_LOG(pq_uniform(rng));   /* draw: free path */
        int axis;
        float dist = pq_to_boundary(ph, grid, &axis);
        int event = EV_CROSS;
        if (lab.mus > 0.0f && ph->s <= dist * lab.mus) { dist = ph->s * lab.inv_mus; event = EV_SCATTER; }
        float d_gate = (t_gate - ph->t) * lab.c_n;
        if (d_gate <= dist) { dist = PQ_FMAX(d_gate, 0.0f); event = EV_GATE; }
        pq_move(ph, dist);
        ph->t += dist * lab.n_c;
        float w_new = ph->w * PQ_EXP(-acc.mua * dist);
#if PQ_FLUENCE
        /* track-length estimator: integral of the weight along the step */
        acc.track += acc.mua > 0.0f ? (ph->w - w_new) * acc.inv_mua : ph->w * dist;
#endif
        ph->w = w_new;
        ph->s = event == EV_SCATTER ? 0.0f : ph->s - dist * lab.mus;
        steps += 1;

        if (event == EV_GATE) {
            final_slot = ip[IP_GATE_SLOT];
            PQ_TRACE_EVENT(ph, final_slot == TALLY_ALIVE ? EV_GATE : EV_STOPPED);
            break;
        }
        if (steps >= max_steps) { final_slot = TALLY_STOPPED; PQ_TRACE_EVENT(ph, EV_STOPPED); break; }

        if (event == EV_SCATTER) {
            pq_scatter(ph, &lab, rng);
            interactions += 1;
            PQ_TRACE_EVENT(ph, EV_SCATTER);
            if (ph->w < roulette_w) {  /* unbiased Russian roulette; net weight tallied */
                pq_i64 fix_w = pq_fix_w(ph->w);
                if (pq_uniform(rng) * roulette_m < 1.0f) {                 /* draw: roulette */
                    float w_up = ph->w * roulette_m;
                    pq_i64 fix_up = pq_fix_w(w_up);
                    pq_tally_add(scalars, TALLY_ROULETTE, fix_up - fix_w);
                    /* the voxel settles from the boosted weight: absorbed so far stays booked */
                    acc.fix_entry += fix_up - fix_w;
                    gain += w_up - ph->w;
                    ph->w = w_up;
                    if (gain > PQ_MAX_ROULETTE_GAIN) {
                        final_slot = TALLY_STOPPED;
                        PQ_TRACE_EVENT(ph, EV_STOPPED);
                        break;
                    }
                } else {
                    pq_tally_add(scalars, TALLY_ROULETTE, -fix_w);
                    acc.fix_entry -= fix_w;
                    ph->w = 0.0f;
                    PQ_TRACE_EVENT(ph, EV_ROULETTE);
                    break;
                }
            }
            continue;
        }

        /* EV_CROSS: the photon is on the face of its voxel normal to `axis` */
        float u = pq_pick(ph->ux, ph->uy, ph->uz, axis);
        int i = pq_pick_i(ph->ix, ph->iy, ph->iz, axis);
        int n_axis = pq_pick_i(grid->nx, grid->ny, grid->nz, axis);
        int step = u > 0.0f ? 1 : -1;
        PQ_SET(ph->x, ph->y, ph->z, axis, pq_plane(i, u, pq_pick(grid->dx, grid->dy, grid->dz, axis)));
        int next = i + step;
        int outside = next < 0 || next >= n_axis;
        int face = 2 * axis + (step > 0 ? 1 : 0);
        int bc = outside ? pq_face_bc(face) : BC_ESCAPE;
        if (outside && bc == BC_MIRROR) {
            pq_flip(ph, axis);
            PQ_TRACE_EVENT(ph, EV_REFLECT);
            continue;
        }
        if (outside && bc == BC_CYCLIC) { next = step > 0 ? 0 : n_axis - 1; outside = 0; }
        int next_flat = acc.flat + (next - i) * pq_pick_i(stride_x, stride_y, 1, axis);
        int next_label = outside ? 0 : b->labels[next_flat];
        float n_next = next_label == 0 ? grid->n_amb : opt[next_label * 4 + 3];
        if (n_next != lab.n) {
            float cos_t;
            float r = pq_fresnel(lab.n, n_next, PQ_FABS(u), &cos_t);
            if (pq_uniform(rng) < r) {                            /* draw: reflect or refract */
                pq_flip(ph, axis);
                PQ_TRACE_EVENT(ph, EV_REFLECT);
                continue;
            }
            pq_refract(ph, axis, lab.n / n_next, cos_t);
        }
        if (next_label == 0) {   /* leaves through a box face or into an ambient voxel */
            final_slot = outside ? TALLY_ESCAPE + face : TALLY_ESCAPE_AMBIENT;
#if PQ_EXIT_MAP
            if (outside && face == 4 && -ph->uz >= fp[FP_MAP_COS]) pq_score_exit(ph, b);
#endif
            PQ_TRACE_EVENT(ph, EV_ESCAPE);
            break;
        }
        /* into the next voxel: settle this voxel's tallies first */
        pq_i64 fix_w = pq_fix_w(ph->w);
        pq_settle(&acc, b, n_voxels, fix_w);
        if (next != i + step)   /* wrapped through a cyclic face */
            PQ_SET(ph->x, ph->y, ph->z, axis, step > 0 ? 0.0f : pq_extent(grid, axis));
        PQ_SET(ph->ix, ph->iy, ph->iz, axis, next);
        if (next_label != ph->label) {
            ph->label = next_label;
            pq_label_load(&lab, opt, next_label);
        }
        pq_voxel_enter(&acc, b, next_flat, n_voxels, ph->bin, &lab, fix_w);
        PQ_TRACE_EVENT(ph, EV_CROSS);
    }

    pq_settle(&acc, b, n_voxels, pq_fix_w(ph->w));
    if (final_slot >= 0) pq_tally_add(scalars, final_slot, pq_fix_w(ph->w));
    pq_tally_add(scalars, TALLY_INTERACTIONS, (pq_i64)interactions);
    pq_tally_add(scalars, TALLY_STEPS, (pq_i64)steps);
}

/* One photon, from its index: random stream, launch, entry into tissue, transport. */
PQ_DEVICE void pq_photon_run(const pq_buffers *b, const pq_grid *grid, pq_u32 seed_lo, pq_u32 seed_hi,
                             pq_u64 photon)
{
    PQ_GLOBAL const int *ip = b->ip;
    pq_tracer tracer;
    tracer.buf = b->trace; tracer.slot = -1; tracer.count = 0;
#if PQ_TRACE
    for (int i = 0; i < ip[IP_N_TRACE]; ++i)
        if ((pq_u64)b->trace_ids[2 * i] + ((pq_u64)b->trace_ids[2 * i + 1] << 32) == photon) tracer.slot = i;
#endif
    pq_rng rng;
    pq_rng_init(&rng, seed_lo, seed_hi, photon, (pq_u32)ip[IP_STREAM]);
    pq_photon ph;
    ph.w = 1.0f; ph.t = 0.0f; ph.s = 0.0f;
    ph.bin = ip[IP_SRC_BIN];
    pq_launch(&ph, b, &rng);
    if (pq_enter(&ph, grid, b, &tracer)) pq_propagate(&ph, grid, b, &rng, &tracer);
}

/* Persistent threads: each takes the launch's next photon from the `work` counter until all
 * n_photons are done, so no thread idles while others finish a tail. Which thread runs a photon
 * does not matter: its random stream is keyed by its index and the tallies are integer sums.
 * No early `return` in the kernel body: PoCL 3.1's work-group vectoriser (loopvec) miscompiled
 * one, taking the wrong branch after it (tests/test_transport.py, rectangle source from air). */
PQ_KERNEL void pq_transport(PQ_TRANSPORT_PARAMS)
{
    pq_buffers buf;
    PQ_BIND_BUFFERS(buf);
    pq_grid grid;
    grid.nx = ip[IP_NX]; grid.ny = ip[IP_NY]; grid.nz = ip[IP_NZ];
    grid.dx = fp[FP_DX]; grid.dy = fp[FP_DY]; grid.dz = fp[FP_DZ];
    grid.n_amb = fp[FP_N_AMBIENT];
    grid.nlabel = ip[IP_NLABEL];
    pq_u64 first = ((pq_u64)first_hi << 32) | (pq_u64)first_lo;
    pq_u32 k = PQ_ATOMIC_INC_U32(work);
    while (k < n_photons) {
        pq_photon_run(&buf, &grid, seed_lo, seed_hi, first + (pq_u64)k);
        k = PQ_ATOMIC_INC_U32(work);
    }
}
