/* photonqd prelude for OpenCL C 1.2 (PoCL, vendor GPU drivers). Maps the portable names used by
 * rng.h and transport.cl onto OpenCL built-ins. Keep in step with prelude_cuda.h. */
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable
#define PQ_OPENCL 1
#define PQ_KERNEL __kernel
#define PQ_GLOBAL __global
/* Inline every helper into the kernel: PoCL keeps large ones out of line, and a photon passed by
 * pointer to an out-of-line call cannot live in registers. */
#define PQ_DEVICE static inline __attribute__((always_inline))
#define PQ_THREAD_ID ((pq_u32)get_global_id(0))
typedef uint pq_u32;
typedef ulong pq_u64;
typedef long pq_i64;
typedef ushort pq_u16;
/* high word of a 64-bit product: PoCL's mul_hi(uint) builds it from 16-bit pieces instead */
#define PQ_MULHI(a, b) ((pq_u32)(((pq_u64)(pq_u32)(a) * (pq_u64)(pq_u32)(b)) >> 32))
#define PQ_ATOMIC_ADD_I64(ptr, v) atom_add((volatile __global long *)(ptr), (long)(v))
#define PQ_ATOMIC_INC_U32(ptr) atomic_inc((volatile __global uint *)(ptr))
/* Round to nearest even, as CUDA's __float2ll_rn, so fixed-point tallies agree bit for bit.
 * PoCL expands convert_long_rte (and rint) into branches; adding and subtracting 2^23 with x's
 * sign rounds |x| < 2^23 in the default rounding mode, and larger floats are whole already
 * (so never build with -cl-fast-relaxed-math / -cl-unsafe-math-optimizations, which may fold it). */
#define PQ_TO_I64(x) pq_round_i64(x)
PQ_DEVICE long pq_round_i64(float x)
{
    float m = copysign(8388608.0f, x);
    return convert_long(fabs(x) < 8388608.0f ? (x + m) - m : x);
}
/* Natural log of a positive normal float: PoCL's native_log costs about three exps, and the
 * transport loop takes one per scattering event (-log of a uniform). x = 2^e m with m in
 * [sqrt(1/2), sqrt(2)); log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.172, by its series
 * to s^9 (truncation below 1e-9 relative): as accurate as float rounding allows. */
PQ_DEVICE float pq_log(float x)
{
    int bits = as_int(x);
    int e = ((bits >> 23) & 0xff) - 127;
    float m = as_float((bits & 0x007fffff) | 0x3f800000);
    int big = m > 1.41421356f;
    m = big ? 0.5f * m : m;
    e += big;
    float s = (m - 1.0f) / (m + 1.0f);
    float s2 = s * s;
    float p = s2 * (0.33333333f + s2 * (0.2f + s2 * (0.14285714f + s2 * 0.11111111f)));
    return (float)e * 0.69314718f + (2.0f * s + 2.0f * s * p);
}
/* sin and cos of x in [-pi, pi] together (the azimuth of every scattering event): PoCL's native_sin
 * and native_cos cost about three exps each. Reduced to r in [-pi/4, pi/4] by quarter turns
 * (pi/2 split in two parts so r keeps its precision), then Taylor polynomials to r^9 and r^8:
 * absolute error below 3e-8 before float rounding. */
PQ_DEVICE void pq_sincos(float x, float *s, float *c)
{
    float q = rint(x * 0.63661977f);                      /* quarter turns: -2 .. 2 */
    float r = (x - q * 1.5707963f) - q * 7.5497894e-8f;   /* pi/2 = 1.5707963 + 7.5497894e-8 */
    float r2 = r * r;
    float sr = r * (1.0f + r2 * (-1.6666667e-1f + r2 * (8.3333333e-3f + r2 * (-1.9841270e-4f + r2 * 2.7557319e-6f))));
    float cr = 1.0f + r2 * (-0.5f + r2 * (4.1666667e-2f + r2 * (-1.3888889e-3f + r2 * 2.4801587e-5f)));
    int k = (int)q & 3;                                   /* quadrant: rotate (cr, sr) by k quarter turns */
    float sk = (k & 1) ? cr : sr, ck = (k & 1) ? sr : cr;
    *s = (k & 2) ? -sk : sk;
    *c = ((k + 1) & 2) ? -ck : ck;
}
#define PQ_SINCOS(x, s, c) pq_sincos(x, s, c)
/* Fast transcendental functions (relative error ~1e-6 or better on arguments the kernel passes:
 * log of (0,1], exp of <= 0), as MCX does; the tests hold at 1e-5. */
#define PQ_LOG(x) pq_log(x)
#define PQ_EXP(x) native_exp(x)
#define PQ_SQRT(x) sqrt(x)
#define PQ_FABS(x) fabs(x)
#define PQ_FLOOR(x) floor(x)
#define PQ_FMIN(a, b) fmin(a, b)
#define PQ_FMAX(a, b) fmax(a, b)
