// Molecular dynamics of lattice phi^4 (the (beta, lam) form of hpcflow.theories.phi4):
//
//   F(x) = dS/dphi(x) = -beta sum_mu [phi(x+mu) + phi(x-mu)] + 2 phi(x) + 4 lam phi(x) (phi(x)^2 - 1)
//
// Every integrator of hpcflow.samplers.integrators is a first kick pi -= b0 F(phi) followed by
// moves "drift then kick": phi += a pi, pi -= b F(phi). One move is one pass over memory here:
// the drifted field at x and at its 2d neighbours is recomputed from (phi, pi) on the fly, and
// (phi, pi) go to a second buffer pair. The arithmetic is that of the torch path operation for
// operation (an add with alpha is one fused multiply-add, as in torch's vectorized kernels; the
// neighbour sum in the same order), and these functions are compiled with fp-contract=off, so
// nothing else is fused.
//
// Layout: fields (B, V) contiguous, V = rows x the last axis; the sites of a row are contiguous,
// so the loop over them vectorizes (the two ends wrap around).
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

namespace hpcflow {

template <typename T>
struct Phi4Couplings {
    T beta;      // nearest-neighbour coupling
    T four_lam;  // 4 lam, as the torch path rounds it
};

template <typename T>
inline T phi4_force(T here, T neighbours, const Phi4Couplings<T>& g) {
    T local = here * here;
    local = local - T(1);
    local = local * g.four_lam;
    local = local + T(2);
    local = local * here;
    return std::fma(neighbours, -g.beta, local);
}

template <typename T, bool Drift>
inline T phi4_drifted(const T* __restrict f, const T* __restrict p, int64_t y, T a) {
    if constexpr (Drift) return std::fma(p[y], a, f[y]);
    return f[y];
}

// One move on the sites of one row of the last lattice axis (ncols sites, contiguous):
// pi_out = pi - b F(phi + a pi), phi_out = phi + a pi (Drift = false: a kick alone). rows[k] is
// the start of the neighbouring row along axis k/2 (+ then -), the last axis is the row itself.
template <typename T, int D, bool Drift>
inline void phi4_row(const T* __restrict f, const T* __restrict p, T* __restrict f_out, T* __restrict p_out,
                     const int64_t* rows, int64_t here, int64_t ncols, const Phi4Couplings<T>& g, T a, T b) {
    auto site = [&](int64_t col, int64_t right, int64_t left) __attribute__((always_inline)) {
        T sum = phi4_drifted<T, Drift>(f, p, rows[0] + col, a) + phi4_drifted<T, Drift>(f, p, rows[1] + col, a);
        for (int k = 2; k < 2 * (D - 1); ++k) sum = sum + phi4_drifted<T, Drift>(f, p, rows[k] + col, a);
        sum = sum + phi4_drifted<T, Drift>(f, p, here + right, a);
        sum = sum + phi4_drifted<T, Drift>(f, p, here + left, a);
        const T x = phi4_drifted<T, Drift>(f, p, here + col, a);
        f_out[here + col] = x;
        p_out[here + col] = std::fma(phi4_force(x, sum, g), -b, p[here + col]);
    };
    site(0, 1 % ncols, ncols - 1);
    for (int64_t col = 1; col < ncols - 1; ++col) site(col, col + 1, col - 1);
    if (ncols > 1) site(ncols - 1, 0, ncols - 2);
}

template <typename T, int D, bool Drift>
void phi4_move(const T* phi, const T* pi, T* phi_out, T* pi_out, const int64_t* row_nbr, int64_t nrows, int64_t ncols,
               int64_t batch, const Phi4Couplings<T>& g, T a, T b, int threads) {
    const int64_t volume = nrows * ncols;
#pragma omp parallel for schedule(static) collapse(2) num_threads(threads)
    for (int64_t c = 0; c < batch; ++c) {
        for (int64_t r = 0; r < nrows; ++r) {
            int64_t rows[2 * (D - 1)];
            for (int k = 0; k < 2 * (D - 1); ++k) rows[k] = row_nbr[r * 2 * (D - 1) + k] * ncols;
            const int64_t off = c * volume;
            phi4_row<T, D, Drift>(phi + off, pi + off, phi_out + off, pi_out + off, rows, r * ncols, ncols, g, a, b);
        }
    }
}

// The whole trajectory from (phi, pi), which stay intact: first kick b0, then the moves
// (a_k, b_k), ping-pong between the buffer pairs 0 and 1; returns the pair that holds the end
// point. row_nbr (R, 2(D-1)): the neighbouring rows of every row along the first D-1 axes.
template <typename T, int D>
int phi4_trajectory(const T* phi, const T* pi, T* const phi_buf[2], T* const pi_buf[2], const int64_t* row_nbr,
                    int64_t nrows, int64_t ncols, int64_t batch, const Phi4Couplings<T>& g, T first_kick,
                    const std::vector<std::pair<double, double>>& moves, int threads) {
    phi4_move<T, D, false>(phi, pi, phi_buf[0], pi_buf[0], row_nbr, nrows, ncols, batch, g, T(0), first_kick, threads);
    int where = 0;
    for (const auto& [a, b] : moves) {
        phi4_move<T, D, true>(phi_buf[where], pi_buf[where], phi_buf[1 - where], pi_buf[1 - where], row_nbr, nrows, ncols,
                              batch, g, T(a), T(b), threads);
        where = 1 - where;
    }
    return where;
}

}  // namespace hpcflow

#pragma GCC pop_options
