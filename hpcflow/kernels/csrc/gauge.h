// SU(N) gauge-field molecular dynamics on the CPU: the Wilson-action force and the group drift
// of hpcflow.samplers.gauge_hmc, one pass over the links each.
//
//   A_mu(x) = sum_{nu != mu} [ U_nu(x+mu) U_mu(x+nu)^+ U_nu(x)^+ + U_nu(x+mu-nu)^+ U_mu(x-nu)^+ U_nu(x-nu) ]
//   F_mu(x) = c [ (M - M^+) / 2i ]_traceless,   M = U_mu(x) A_mu(x)      (c = beta / 2N)
//   U_mu(x) <- exp(i eps P_mu(x)) U_mu(x)
//
// The exponential is a Taylor series of degree 12 after scaling X = i eps P by 2^-k until its
// infinity norm is at most 1/4 (the remainder is below 1e-17 of the norm), then k squarings:
// exp(-X) exp(X) = 1 to rounding, so the leapfrog stays reversible.
//
// Layouts (contiguous): links and momenta (B, d, V, N, N), the lattice axes flattened row-major;
// neighbours (V, 2d), forward then backward per direction (hpcflow.kernels.dirac.neighbour_table).
// OpenMP over links.
#pragma once

#include <cmath>
#include <cstdint>

#include "complex.h"

namespace hpcflow {

template <typename T, int N>
struct Mat {
    cx<T> e[N * N];
    cx<T>& operator()(int i, int j) { return e[i * N + j]; }
    const cx<T>& operator()(int i, int j) const { return e[i * N + j]; }
};

template <typename T, int N>
inline Mat<T, N> load(const cx<T>* p) {
    Mat<T, N> m;
    for (int k = 0; k < N * N; ++k) m.e[k] = p[k];
    return m;
}

// a b with either factor daggered on request: product<false, true>(a, b) = a b^+
template <bool DagA, bool DagB, typename T, int N>
inline Mat<T, N> product(const Mat<T, N>& a, const Mat<T, N>& b) {
    Mat<T, N> c;
    for (int i = 0; i < N; ++i)
        for (int k = 0; k < N; ++k) {
            cx<T> s{0, 0};
            for (int j = 0; j < N; ++j) s += (DagA ? conj(a(j, i)) : a(i, j)) * (DagB ? conj(b(k, j)) : b(j, k));
            c(i, k) = s;
        }
    return c;
}

template <typename T, int N>
inline Mat<T, N> mul(const Mat<T, N>& a, const Mat<T, N>& b) {
    return product<false, false>(a, b);
}

template <typename T, int N>
void wilson_gauge_force(const cx<T>* links, const int64_t* nbr, cx<T>* out, T coefficient, int dims, int64_t volume,
                        int64_t batch, int threads) {
    constexpr int NN = N * N;
    const int64_t total = batch * dims * volume;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t link = 0; link < total; ++link) {
        const int64_t x = link % volume, mu = (link / volume) % dims, b = link / (volume * dims);
        auto at = [&](int64_t nu, int64_t site) { return load<T, N>(links + ((b * dims + nu) * volume + site) * NN); };
        const int64_t x_mu = nbr[x * 2 * dims + 2 * mu];
        Mat<T, N> staple{};
        for (int nu = 0; nu < dims; ++nu) {
            if (nu == mu) continue;
            const int64_t x_nu = nbr[x * 2 * dims + 2 * nu], x_mnu = nbr[x * 2 * dims + 2 * nu + 1];
            const int64_t x_mu_mnu = nbr[x_mu * 2 * dims + 2 * nu + 1];
            const Mat<T, N> up = product<false, true>(product<false, true>(at(nu, x_mu), at(mu, x_nu)), at(nu, x));
            const Mat<T, N> down = product<true, false>(mul(at(mu, x_mnu), at(nu, x_mu_mnu)), at(nu, x_mnu));
            for (int k = 0; k < NN; ++k) staple.e[k] += up.e[k] + down.e[k];
        }
        const Mat<T, N> m = mul(at(mu, x), staple);
        T trace = 0;  // tr (M - M^+) / 2i = sum_i Im M_ii
        for (int i = 0; i < N; ++i) trace += m(i, i).im;
        cx<T>* f = out + link * NN;
        for (int i = 0; i < N; ++i)
            for (int j = 0; j < N; ++j) {
                const cx<T> z = m(i, j) - conj(m(j, i));  // (M - M^+)_ij; divided by 2i: (Im z, -Re z) / 2
                f[i * N + j] = {coefficient * (z.im / 2 - (i == j ? trace / N : T(0))), -coefficient * z.re / 2};
            }
    }
}

template <typename T, int N>
inline Mat<T, N> exp_anti_hermitian(Mat<T, N> x) {
    T norm = 0;
    for (int i = 0; i < N; ++i) {
        T row = 0;
        for (int j = 0; j < N; ++j) row += std::hypot(x(i, j).re, x(i, j).im);
        norm = row > norm ? row : norm;
    }
    int squarings = 0;
    T scale = 1;
    while (norm * scale > T(0.25)) {
        scale /= 2;
        ++squarings;
    }
    for (int k = 0; k < N * N; ++k) x.e[k] = scale * x.e[k];
    Mat<T, N> e{};  // Horner: 1 + X (1 + X/2 (1 + X/3 (... (1 + X/12))))
    for (int i = 0; i < N; ++i) e(i, i) = {1, 0};
    for (int order = 12; order >= 1; --order) {
        Mat<T, N> next = mul(x, e);
        for (int k = 0; k < N * N; ++k) next.e[k] = (T(1) / order) * next.e[k];
        for (int i = 0; i < N; ++i) next(i, i) += cx<T>{1, 0};
        e = next;
    }
    for (int s = 0; s < squarings; ++s) e = mul(e, e);
    return e;
}

template <typename T, int N>
void su_n_drift(const cx<T>* momenta, const cx<T>* links, cx<T>* out, T eps, int64_t count, int threads) {
    constexpr int NN = N * N;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t l = 0; l < count; ++l) {
        Mat<T, N> x = load<T, N>(momenta + l * NN);
        for (int k = 0; k < NN; ++k) x.e[k] = {-eps * x.e[k].im, eps * x.e[k].re};  // i eps P
        const Mat<T, N> moved = mul(exp_anti_hermitian(x), load<T, N>(links + l * NN));
        for (int k = 0; k < NN; ++k) out[l * NN + k] = moved.e[k];
    }
}

}  // namespace hpcflow
