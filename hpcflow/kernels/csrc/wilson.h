// Wilson(-clover) operator and single-hop parallel transports on the CPU.
//
//   (D psi)(x) = L(x) psi(x) - 1/2 sum_mu [ (1 - g_mu) U_mu(x) psi(x+mu) + (1 + g_mu) U_mu(x-mu)^+ psi(x-mu) ]
//
// with L(x) = (d + m) 1 (+ the clover term), in a chiral basis where g_mu = ((0, A_mu), (A_mu^+, 0))
// in blocks of H = S/2 spins and every A_mu has one entry i^k per row (Basis below). Spin projection
// (half-spinors): (1 - g) psi = (h, -A^+ h) with h = psi_up - A psi_dn, and (1 + g) psi = (h', A^+ h')
// with h' = psi_up + A psi_dn, so each direction multiplies H colour vectors by a link, not 2H.
// In that basis L(x) is block diagonal in chirality: two (H N) x (H N) blocks per site.
//
// Layouts (all contiguous): spinors (B, V, S, N); links (V, d, N, N), site-major with the
// fermion boundary phases already on them; neighbours (V, 2d), forward then backward per
// direction; local blocks (V, 2, H N, H N). OpenMP over sites, the right-hand sides innermost, so
// the 2d links of a site are read once for the whole batch; the H rows of a half-spinor travel
// together in one SIMD vector (rows.h), which doubled the throughput over scalar complex code.
#pragma once

#include <cstdint>

#include "complex.h"
#include "rows.h"

namespace hpcflow {

// The chiral bases of hpcflow.dirac.gamma, per lattice axis: A_mu has in row r the entry
// i^phase[mu][r] in column perm[mu][r]; the *_dag tables are those of A_mu^+. The Python wrapper
// checks them against the gamma matrices it is given (spin_basis() exports them).
template <int D>
struct Basis;

template <>
struct Basis<4> {  // DeGrand-Rossi: axis 0 gamma_4 (A = 1), then gamma_1 (A = i s1), gamma_2 (-i s2), gamma_3 (i s3)
    static constexpr int H = 2;
    static constexpr int perm[4][2] = {{0, 1}, {1, 0}, {1, 0}, {0, 1}};
    static constexpr int phase[4][2] = {{0, 0}, {1, 1}, {2, 0}, {1, 3}};
    static constexpr int perm_dag[4][2] = {{0, 1}, {1, 0}, {1, 0}, {0, 1}};
    static constexpr int phase_dag[4][2] = {{0, 0}, {3, 3}, {0, 2}, {3, 1}};
};

template <>
struct Basis<2> {  // Pauli: axis 0 sigma_x (A = 1), axis 1 sigma_y (A = -i)
    static constexpr int H = 1;
    static constexpr int perm[2][1] = {{0}, {0}};
    static constexpr int phase[2][1] = {{0}, {3}};
    static constexpr int perm_dag[2][1] = {{0}, {0}};
    static constexpr int phase_dag[2][1] = {{0}, {1}};
};

template <typename T, int D, int NC>
void wilson_apply(const cx<T>* __restrict psi, cx<T>* __restrict out, const cx<T>* __restrict links,
                  const int64_t* __restrict nbr, const cx<T>* __restrict local, T diag, int64_t volume, int64_t batch,
                  int threads) {
    using B = Basis<D>;
    constexpr int H = B::H, S = 2 * H, SN = S * NC, HN = H * NC;
    using R = Rows<T, H>;
    int upper[H];
    for (int r = 0; r < H; ++r) upper[r] = r;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t x = 0; x < volume; ++x) {
        for (int64_t b = 0; b < batch; ++b) {
            const cx<T>* field = psi + b * volume * SN;
            R acc_up[NC] = {}, acc_dn[NC] = {};  // per colour: the upper and the lower half-spinor
#pragma GCC unroll 4
            for (int mu = 0; mu < D; ++mu) {
#pragma GCC unroll 2
                for (int dir = 0; dir < 2; ++dir) {
                    const int64_t y = nbr[x * 2 * D + 2 * mu + dir];
                    const cx<T>* p = field + y * SN;
                    const int sign = dir == 0 ? 2 : 0;  // i^2 = -1: (1 - g) forward, (1 + g) backward
                    int lower[H], k_proj[H], k_rec[H];
                    for (int r = 0; r < H; ++r) {
                        lower[r] = H + B::perm[mu][r];
                        k_proj[r] = B::phase[mu][r] + sign;
                        k_rec[r] = B::phase_dag[mu][r] + sign;
                    }
                    R h[NC];  // h = psi_up -+ A psi_dn
                    for (int c = 0; c < NC; ++c)
                        h[c] = load_rows<T, H, NC>(p, upper, c) + rot_rows<T, H>(k_proj, load_rows<T, H, NC>(p, lower, c));
                    R uh[NC];
                    if (dir == 0) {  // U_mu(x) h
                        const cx<T>* u = links + (x * D + mu) * NC * NC;
                        for (int a = 0; a < NC; ++a) {
                            R s = scale(u[a * NC], h[0]);
                            for (int c = 1; c < NC; ++c) s += scale(u[a * NC + c], h[c]);
                            uh[a] = s;
                        }
                    } else {  // U_mu(x-mu)^+ h
                        const cx<T>* u = links + (y * D + mu) * NC * NC;
                        for (int a = 0; a < NC; ++a) {
                            R s = scale_conj(u[a], h[0]);
                            for (int c = 1; c < NC; ++c) s += scale_conj(u[c * NC + a], h[c]);
                            uh[a] = s;
                        }
                    }
                    for (int a = 0; a < NC; ++a) {  // upper += U h, lower += -+ A^+ U h
                        acc_up[a] += uh[a];
                        R rows = uh[a];
                        if constexpr (H == 2) {
                            if (B::perm_dag[mu][0] == 1) rows.v = __builtin_shufflevector(uh[a].v, uh[a].v, 2, 3, 0, 1);
                        }
                        acc_dn[a] += rot_rows<T, H>(k_rec, rows);
                    }
                }
            }
            const cx<T>* here = field + x * SN;
            cx<T>* o = out + b * volume * SN + x * SN;
            for (int k = 0; k < 2; ++k) {  // the chirality blocks: spins k H .. k H + H - 1
                const R* acc = k == 0 ? acc_up : acc_dn;
                const cx<T>* m = local ? local + (x * 2 + k) * HN * HN : nullptr;
                for (int i = 0; i < HN; ++i) {
                    const int r = i / NC, a = i % NC;
                    cx<T> s;
                    if (m) {
                        s = {};
                        for (int j = 0; j < HN; ++j) s += m[i * HN + j] * here[k * HN + j];
                    } else {
                        s = diag * here[k * HN + i];
                    }
                    o[k * HN + i] = s - T(0.5) * cx<T>{acc[a].v[2 * r], acc[a].v[2 * r + 1]};
                }
            }
        }
    }
}

// One hop of fields (M, V, S, N) along +mu (forward: U_mu(x) psi(x+mu)) or -mu
// (U_mu(x-mu)^+ psi(x-mu)); M counts every leading axis (batch, channels).
template <typename T, int NC>
void hop_apply(const cx<T>* __restrict psi, cx<T>* __restrict out, const cx<T>* __restrict links,
               const int64_t* __restrict nbr, int dims, int mu, bool forward, int64_t leading, int64_t volume,
               int spins, int threads) {
    const int64_t sn = int64_t(spins) * NC;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t x = 0; x < volume; ++x) {
        const int64_t y = nbr[x * 2 * dims + 2 * mu + (forward ? 0 : 1)];
        const cx<T>* u = links + ((forward ? x : y) * dims + mu) * NC * NC;
        cx<T> w[NC][NC];  // the matrix applied: U or U^+
        for (int a = 0; a < NC; ++a)
            for (int c = 0; c < NC; ++c) w[a][c] = forward ? u[a * NC + c] : cx<T>{u[c * NC + a].re, -u[c * NC + a].im};
        for (int64_t m = 0; m < leading; ++m) {
            const cx<T>* p = psi + (m * volume + y) * sn;
            cx<T>* o = out + (m * volume + x) * sn;
            int s = 0;
            for (; s + 1 < spins; s += 2) {  // two spins per SIMD vector
                const int pair[2] = {s, s + 1};
                Rows<T, 2> in[NC];
                for (int c = 0; c < NC; ++c) in[c] = load_rows<T, 2, NC>(p, pair, c);
                for (int a = 0; a < NC; ++a) {
                    Rows<T, 2> acc = scale(w[a][0], in[0]);
                    for (int c = 1; c < NC; ++c) acc += scale(w[a][c], in[c]);
                    o[s * NC + a] = {acc.v[0], acc.v[1]};
                    o[(s + 1) * NC + a] = {acc.v[2], acc.v[3]};
                }
            }
            for (; s < spins; ++s)  // an odd spin count (coarse fields) leaves one
                for (int a = 0; a < NC; ++a) {
                    cx<T> acc = {};
                    for (int c = 0; c < NC; ++c) acc += w[a][c] * p[s * NC + c];
                    o[s * NC + a] = acc;
                }
        }
    }
}

}  // namespace hpcflow
