/* photonqd prelude for CUDA C++ (NVRTC through CuPy, or nvcc). Maps the portable names used by
 * rng.h and transport.cl onto CUDA intrinsics. Keep in step with prelude_opencl.h. */
#define PQ_CUDA 1
#define PQ_KERNEL extern "C" __global__
#define PQ_GLOBAL
#define PQ_DEVICE __device__ static
#define PQ_THREAD_ID ((pq_u32)(blockIdx.x * blockDim.x + threadIdx.x))
typedef unsigned int pq_u32;
typedef unsigned long long pq_u64;
typedef long long pq_i64;
typedef unsigned short pq_u16;
#define PQ_MULHI(a, b) __umulhi((pq_u32)(a), (pq_u32)(b))
#define PQ_ATOMIC_ADD_I64(ptr, v) atomicAdd((unsigned long long *)(ptr), (unsigned long long)(v))
#define PQ_ATOMIC_INC_U32(ptr) atomicAdd((unsigned int *)(ptr), 1u)
#define PQ_TO_I64(x) __float2ll_rn(x)
/* Fast transcendental functions (relative error ~1e-6 or better on arguments the kernel passes:
 * log of (0,1], exp of <= 0), as MCX does; the tests hold at 1e-5. */
#define PQ_LOG(x) __logf(x)
#define PQ_EXP(x) __expf(x)
#define PQ_SQRT(x) sqrtf(x)
#define PQ_SINCOS(x, s, c) __sincosf(x, s, c)
#define PQ_FABS(x) fabsf(x)
#define PQ_FLOOR(x) floorf(x)
#define PQ_FMIN(a, b) fminf(a, b)
#define PQ_FMAX(a, b) fmaxf(a, b)
