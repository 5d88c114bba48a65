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
    ph->ux = st * PQ_COS(phi);
    ph->uy = st * PQ_SIN(phi);
    ph->uz = ct;
}

/* Position and direction from the source (draws as listed per source type). An emission source
 * (fluorescence) picks a voxel from an alias table over emitting voxels (em_u32: voxel indices,
 * then alias indices; em_f32: acceptance, then the wavelength-bin CDF). */
PQ_DEVICE void pq_launch(pq_photon *ph, PQ_GLOBAL const float *fp, PQ_GLOBAL const int *ip,
                         PQ_GLOBAL const pq_u32 *em_u32, PQ_GLOBAL const float *em_f32, pq_rng *rng)
{
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
    float c = r * PQ_COS(phi), s = r * PQ_SIN(phi);
#elif PQ_SOURCE == SRC_RECTANGLE
    float c = pq_uniform(rng);                                   /* draw: along edge 1 */
    float s = pq_uniform(rng);                                   /* draw: along edge 2 */
#endif
#if PQ_SOURCE == SRC_GAUSSIAN || PQ_SOURCE == SRC_DISK || PQ_SOURCE == SRC_RECTANGLE
    ph->x += c * fp[FP_SRC_E1] + s * fp[FP_SRC_E2];
    ph->y += c * fp[FP_SRC_E1 + 1] + s * fp[FP_SRC_E2 + 1];
    ph->z += c * fp[FP_SRC_E1 + 2] + s * fp[FP_SRC_E2 + 2];
#elif PQ_SOURCE == SRC_ISOTROPIC
    pq_isotropic(ph, rng);
#elif PQ_SOURCE == SRC_EMISSION
    int m = ip[IP_EM_COUNT];
    int k = (int)(pq_uniform(rng) * (float)m);                   /* draw: table entry */
    k = k < m - 1 ? k : m - 1;
    if (!(pq_uniform(rng) < em_f32[k])) k = (int)em_u32[m + k];  /* draw: accept or alias */
    int flat = (int)em_u32[k];
    ph->ix = flat / (ip[IP_NY] * ip[IP_NZ]);
    ph->iy = (flat / ip[IP_NZ]) % ip[IP_NY];
    ph->iz = flat % ip[IP_NZ];
    ph->x = ((float)ph->ix + pq_uniform(rng)) * fp[FP_DX];       /* draw: x, y, z in the voxel */
    ph->y = ((float)ph->iy + pq_uniform(rng)) * fp[FP_DY];
    ph->z = ((float)ph->iz + pq_uniform(rng)) * fp[FP_DZ];
    pq_isotropic(ph, rng);
    float xi = pq_uniform(rng);                                  /* draw: wavelength bin */
    int b = 0;
    while (b < ip[IP_NBIN] - 1 && xi > em_f32[m + b]) ++b;
    ph->bin = b;
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
    PQ_GLOBAL float *rec = tr->buf + ((pq_u64)tr->slot * TRACE_LEN + (pq_u64)tr->count) * 8u;
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
PQ_DEVICE int pq_enter(pq_photon *ph, const pq_grid *grid, PQ_GLOBAL const pq_u16 *labels,
                       PQ_GLOBAL const float *optics, PQ_GLOBAL pq_i64 *tally, int off_scalar,
                       pq_tracer *tracer)
{
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
        ph->label = labels[pq_flat(ph, grid)];
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
        else ph->label = labels[pq_flat(ph, grid)];
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
        float r = pq_fresnel(grid->n_amb, n_in, PQ_FABS(pq_pick(ph->ux, ph->uy, ph->uz, axis)), &cos_t);
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

/* Absorbed weight since the voxel was entered (fixed point); each fluorophore species gets its
 * share mu_a,species / mu_a of it. */
#define PQ_SETTLE_ABSORBED(fix_now) do {                                                       \
        pq_i64 dep_ = fix_voxel - (fix_now);                                                   \
        pq_tally_add(tally, flat, dep_);                                                       \
        for (int sp = 0; sp < PQ_NSPECIES; ++sp)                                               \
            if (mua_sp[sp] > 0.0f)                                                             \
                pq_tally_add(tally, ip[IP_OFF_SPECIES] + sp * n_voxels + flat,                 \
                             PQ_TO_I64((float)dep_ * (mua_sp[sp] / mua)));                    \
    } while (0)
#else
#define PQ_SETTLE_ABSORBED(fix_now) pq_tally_add(tally, flat, fix_voxel - (fix_now))
#endif

#if PQ_EXIT_MAP
/* Score a photon leaving through z = 0 inside the acceptance cone into the exit map, weighted by
 * the detection efficiency of its wavelength bin, and keep it in the bounded record. */
PQ_DEVICE void pq_score_exit(const pq_photon *ph, PQ_GLOBAL const float *fp, PQ_GLOBAL const int *ip,
                             PQ_GLOBAL pq_i64 *tally, PQ_GLOBAL const float *bin_eff,
                             PQ_GLOBAL float *records)
{
    int px = (int)PQ_FLOOR((ph->x - fp[FP_MAP_X0]) / fp[FP_MAP_PX]);
    int py = (int)PQ_FLOOR((ph->y - fp[FP_MAP_Y0]) / fp[FP_MAP_PY]);
    if (px < 0 || px >= ip[IP_MAP_NX] || py < 0 || py >= ip[IP_MAP_NY]) return;
    pq_tally_add(tally, ip[IP_OFF_MAP] + px * ip[IP_MAP_NY] + py, pq_fix_w(ph->w * bin_eff[ph->bin]));
    pq_i64 slot = PQ_ATOMIC_ADD_I64(tally + ip[IP_OFF_SCALAR] + TALLY_DETECTED, 1);
#if PQ_RECORD
    if (slot < (pq_i64)ip[IP_RECORD_CAP]) {   /* beyond the capacity: counted, not stored */
        PQ_GLOBAL float *row = records + slot * 8;
        row[0] = ph->x; row[1] = ph->y;
        row[2] = ph->ux; row[3] = ph->uy; row[4] = ph->uz;
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
    /* this wavelength's rows of the optics table; a label's row is read when the photon enters it */
    PQ_GLOBAL const float *opt = optics + ph->bin * grid->nlabel * 4;
    float mua_tissue = opt[ph->label * 4], mus = opt[ph->label * 4 + 1];
    float g = opt[ph->label * 4 + 2], n = opt[ph->label * 4 + 3];
    float c_n = PQ_C0 / n, n_c = n / PQ_C0;     /* speed in the label and its inverse */
    int flat = pq_flat(ph, grid);
#if PQ_NSPECIES
    /* fluorophores add to the tissue's absorption; their concentration changes voxel by voxel */
    const int n_voxels = grid->nx * grid->ny * grid->nz;
    float mua_sp[PQ_NSPECIES];
    float mua = mua_tissue + pq_species_mua(conc, species_abs, flat, ph->bin, n_voxels, ip[IP_NBIN], mua_sp);
#else
    float mua = mua_tissue;
#endif
    const int stride_x = grid->ny * grid->nz, stride_y = grid->nz;
    float w_voxel = ph->w;      /* weight when the current voxel was entered (absorbed = difference) */
    pq_i64 fix_voxel = pq_fix_w(w_voxel);
    float track = 0.0f;         /* weight x path length in the current voxel, for the fluence */
    int interactions = 0;
    int final_slot = -1;        /* scalar tally receiving the final weight, or -1 */

    for (;;) {
        if (ph->s <= 0.0f) ph->s = -PQ_LOG(pq_uniform(rng));   /* draw: free path */
        int axis;
        float dist = pq_to_boundary(ph, grid, &axis);
        int event = EV_CROSS;
        if (mus > 0.0f && ph->s <= dist * mus) { dist = ph->s / mus; event = EV_SCATTER; }
#if PQ_TIME_GATE
        float d_gate = (fp[FP_T_GATE] - ph->t) * c_n;
        if (d_gate <= dist) { dist = PQ_FMAX(d_gate, 0.0f); event = EV_GATE; }
#endif
        pq_move(ph, dist);
        ph->t += dist * n_c;
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
                pq_i64 fix_w = pq_fix_w(ph->w);
                PQ_SETTLE_ABSORBED(fix_w);
                float m = fp[FP_ROULETTE_M];
                if (pq_uniform(rng) * m < 1.0f) {                 /* draw: roulette */
                    float w_up = ph->w * m;
                    w_voxel = w_up;
                    fix_voxel = pq_fix_w(w_up);
                    pq_tally_add(tally, off_scalar + TALLY_ROULETTE, fix_voxel - fix_w);
                    ph->w = w_up;
                } else {
                    pq_tally_add(tally, off_scalar + TALLY_ROULETTE, -fix_w);
                    w_voxel = 0.0f;
                    fix_voxel = 0;
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
        int next_flat = flat + (next - i) * pq_pick_i(stride_x, stride_y, 1, axis);
        int next_label = outside ? 0 : labels[next_flat];
        float n_next = next_label == 0 ? grid->n_amb : opt[next_label * 4 + 3];
        if (n_next != n) {
            float cos_t;
            float r = pq_fresnel(n, n_next, PQ_FABS(u), &cos_t);
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
            if (outside && face == 4 && -ph->uz >= fp[FP_MAP_COS])
                pq_score_exit(ph, fp, ip, tally, bin_eff, records);
#endif
            PQ_TRACE_EVENT(ph, EV_ESCAPE);
            break;
        }
        /* into the next voxel: settle this voxel's tallies first */
        pq_i64 fix_w = pq_fix_w(ph->w);
        PQ_SETTLE_ABSORBED(fix_w);
#if PQ_FLUENCE
        pq_tally_add(tally, ip[IP_OFF_FLUENCE] + flat, PQ_TO_I64(track * PQ_FIX_L));
        track = 0.0f;
#endif
        w_voxel = ph->w;
        fix_voxel = fix_w;
        if (next != i + step)   /* wrapped through a cyclic face */
            PQ_SET(ph->x, ph->y, ph->z, axis, step > 0 ? 0.0f : pq_extent(grid, axis));
        PQ_SET(ph->ix, ph->iy, ph->iz, axis, next);
        flat = next_flat;
        if (next_label != ph->label) {
            ph->label = next_label;
            mua_tissue = opt[next_label * 4]; mus = opt[next_label * 4 + 1];
            g = opt[next_label * 4 + 2]; n = n_next;
            c_n = PQ_C0 / n; n_c = n / PQ_C0;
        }
#if PQ_NSPECIES
        mua = mua_tissue + pq_species_mua(conc, species_abs, flat, ph->bin, n_voxels, ip[IP_NBIN], mua_sp);
#else
        mua = mua_tissue;
#endif
        PQ_TRACE_EVENT(ph, EV_CROSS);
    }

    PQ_SETTLE_ABSORBED(pq_fix_w(ph->w));
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
        grid.nx = ip[IP_NX]; grid.ny = ip[IP_NY]; grid.nz = ip[IP_NZ];
        grid.dx = fp[FP_DX]; grid.dy = fp[FP_DY]; grid.dz = fp[FP_DZ];
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
