// Fused Wilson-clover operator, one thread per (site, right-hand side).
//
//   out(x) = (4 + m) psi(x)
//            - 1/2 sum_mu [ (1 - g_mu) U_mu(x) psi(x + mu) + (1 + g_mu) U_mu(x - mu)^dag psi(x - mu) ]
//            + C(x) psi(x),          C(x) = c_sw (i/4) sum_{mu,nu} sigma_{mu nu} F_{mu nu}(x)  (12 x 12)
//
// Conventions as hpcflow/dirac/wilson.py: lattice (L0, L1, L2, L3), axis 0 = time, lexicographic
// site index with axis 3 fastest; spinors (B, V, 4 spin, 3 colour); links (4, V, 3, 3); clover
// (V, 12, 12) with row (spin, colour); gamma matrices (DeGrand-Rossi, indexed by axis) in
// constant memory. Complex numbers are interleaved (re, im), as torch and CuPy store them.
// Self-contained (no CuPy headers), so `nvcc -ptx` compiles it as it is.

template <typename T> struct cplx { T re, im; };

template <typename T> __device__ __forceinline__ cplx<T> cmul(cplx<T> a, cplx<T> b) {
    return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
template <typename T> __device__ __forceinline__ cplx<T> cmulc(cplx<T> a, cplx<T> b) {  // conj(a) * b
    return {a.re * b.re + a.im * b.im, a.re * b.im - a.im * b.re};
}
template <typename T> __device__ __forceinline__ void cacc(cplx<T> &acc, cplx<T> a, T s) {
    acc.re += s * a.re;
    acc.im += s * a.im;
}

__constant__ double GAMMA_RE[4][4][4];
__constant__ double GAMMA_IM[4][4][4];

template <typename T>
__device__ void hop_term(cplx<T> (&out)[4][3], const cplx<T> *__restrict__ u, const cplx<T> *__restrict__ src,
                         int mu, bool dagger, T sign) {
    // chi = U psi (or U^dag psi) on colour; out -= 1/2 (chi + sign * g_mu chi)
    cplx<T> chi[4][3];
    for (int s = 0; s < 4; ++s)
        for (int a = 0; a < 3; ++a) {
            cplx<T> acc = {0, 0};
            for (int b = 0; b < 3; ++b) {
                cplx<T> p = src[s * 3 + b];
                cplx<T> m = dagger ? cmulc(u[b * 3 + a], p) : cmul(u[a * 3 + b], p);
                acc.re += m.re;
                acc.im += m.im;
            }
            chi[s][a] = acc;
        }
    for (int s = 0; s < 4; ++s)
        for (int a = 0; a < 3; ++a) {
            cplx<T> g = chi[s][a];
            for (int t = 0; t < 4; ++t) {
                cplx<T> gm = {(T)GAMMA_RE[mu][s][t], (T)GAMMA_IM[mu][s][t]};
                cacc(g, cmul(gm, chi[t][a]), sign);
            }
            cacc(out[s][a], g, (T)-0.5);
        }
}

template <typename T>
__device__ void wilson_clover(cplx<T> *__restrict__ out, const cplx<T> *__restrict__ psi,
                              const cplx<T> *__restrict__ links, const cplx<T> *__restrict__ clover,
                              int L0, int L1, int L2, int L3, int nrhs, T diag, int use_clover) {
    const long volume = (long)L0 * L1 * L2 * L3;
    const long tid = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (tid >= volume * nrhs) return;
    const long site = tid % volume, rhs = tid / volume;
    const int extent[4] = {L0, L1, L2, L3};
    long stride[4];
    stride[3] = 1;
    stride[2] = L3;
    stride[1] = (long)L2 * L3;
    stride[0] = (long)L1 * L2 * L3;
    const cplx<T> *in = psi + rhs * volume * 12;
    cplx<T> acc[4][3];
    for (int s = 0; s < 4; ++s)
        for (int a = 0; a < 3; ++a) {
            cplx<T> p = in[site * 12 + s * 3 + a];
            acc[s][a] = {diag * p.re, diag * p.im};
        }
    for (int mu = 0; mu < 4; ++mu) {
        const int x = (int)((site / stride[mu]) % extent[mu]);
        const long fwd = site + ((x + 1 == extent[mu]) ? -(long)(extent[mu] - 1) : 1) * stride[mu];
        const long bwd = site + ((x == 0) ? (long)(extent[mu] - 1) : -1) * stride[mu];
        hop_term<T>(acc, links + (mu * volume + site) * 9, in + fwd * 12, mu, false, (T)-1);
        hop_term<T>(acc, links + (mu * volume + bwd) * 9, in + bwd * 12, mu, true, (T)1);
    }
    if (use_clover) {
        const cplx<T> *c = clover + site * 144;
        cplx<T> res[12];
        for (int i = 0; i < 12; ++i) {
            cplx<T> r = {0, 0};
            for (int j = 0; j < 12; ++j) {
                cplx<T> m = cmul(c[i * 12 + j], in[site * 12 + j]);
                r.re += m.re;
                r.im += m.im;
            }
            res[i] = r;
        }
        for (int i = 0; i < 12; ++i) cacc(acc[i / 3][i % 3], res[i], (T)1);
    }
    cplx<T> *o = out + rhs * volume * 12 + site * 12;
    for (int s = 0; s < 4; ++s)
        for (int a = 0; a < 3; ++a) o[s * 3 + a] = acc[s][a];
}

extern "C" __global__ void wilson_clover_f64(cplx<double> *out, const cplx<double> *psi, const cplx<double> *links,
                                             const cplx<double> *clover, int L0, int L1, int L2, int L3, int nrhs,
                                             double diag, int use_clover) {
    wilson_clover<double>(out, psi, links, clover, L0, L1, L2, L3, nrhs, diag, use_clover);
}

extern "C" __global__ void wilson_clover_f32(cplx<float> *out, const cplx<float> *psi, const cplx<float> *links,
                                             const cplx<float> *clover, int L0, int L1, int L2, int L3, int nrhs,
                                             float diag, int use_clover) {
    wilson_clover<float>(out, psi, links, clover, L0, L1, L2, L3, nrhs, diag, use_clover);
}
