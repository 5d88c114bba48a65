/* photonqd prelude for OpenCL C 1.2 (PoCL, vendor GPU drivers). Maps the portable names used by
 * philox.h and transport.cl onto OpenCL built-ins. Keep in step with prelude_cuda.h. */
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
/* Fast transcendental functions (relative error ~1e-6 or better on arguments the kernel passes:
 * log of (0,1], exp of <= 0, sin/cos of [-pi, pi]), as MCX does; the tests hold at 1e-5. */
#define PQ_LOG(x) native_log(x)
#define PQ_EXP(x) native_exp(x)
#define PQ_SQRT(x) sqrt(x)
#define PQ_COS(x) native_cos(x)
#define PQ_SIN(x) native_sin(x)
#define PQ_FABS(x) fabs(x)
#define PQ_FLOOR(x) floor(x)
#define PQ_FMIN(a, b) fmin(a, b)
#define PQ_FMAX(a, b) fmax(a, b)
