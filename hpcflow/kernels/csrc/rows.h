// The H rows of a half-spinor at one colour as one SIMD vector (GCC vector extensions):
// re_0, im_0, re_1, im_1, ... (4D double: one 256-bit register). The Wilson kernel works on
// these: one link element times both rows at once, the spin projection as lane shuffles and
// sign flips.
#pragma once

#include "complex.h"

namespace hpcflow {


template <typename T, int H>
struct Rows {
    typedef T vec __attribute__((vector_size(2 * H * sizeof(T))));
    vec v;
};
template <typename T, int H>
inline Rows<T, H> operator+(Rows<T, H> a, Rows<T, H> b) { return {a.v + b.v}; }
template <typename T, int H>
inline Rows<T, H>& operator+=(Rows<T, H>& a, Rows<T, H> b) { a.v += b.v; return a; }
// i z on every row: (re, im) -> (-im, re)
template <typename T, int H>
inline Rows<T, H> times_i(Rows<T, H> a) {
    typename Rows<T, H>::vec s;
    if constexpr (H == 2) s = __builtin_shufflevector(a.v, a.v, 1, 0, 3, 2);
    else s = __builtin_shufflevector(a.v, a.v, 1, 0);
    typename Rows<T, H>::vec sign;
    for (int i = 0; i < 2 * H; ++i) sign[i] = (i % 2 == 0) ? T(-1) : T(1);
    return {s * sign};
}
// u z on every row (u a complex scalar), conj(u) z
template <typename T, int H>
inline Rows<T, H> scale(cx<T> u, Rows<T, H> z) { return {u.re * z.v + u.im * times_i(z).v}; }
template <typename T, int H>
inline Rows<T, H> scale_conj(cx<T> u, Rows<T, H> z) { return {u.re * z.v - u.im * times_i(z).v}; }
// i^k_r on row r (k_r compile-time constants once the loops are unrolled; all of one parity, as
// in the bases of wilson.h)
template <typename T, int H>
inline Rows<T, H> rot_rows(const int* k, Rows<T, H> z) {
    Rows<T, H> out = (k[0] & 1) ? times_i(z) : z;
    typename Rows<T, H>::vec sign;
    for (int r = 0; r < H; ++r) {
        const T s = ((k[r] & 3) >= 2) ? T(-1) : T(1);
        sign[2 * r] = s; sign[2 * r + 1] = s;
    }
    return {out.v * sign};
}
// rows (r_0, ..., r_{H-1}) of colour c of a spinor (S, N)
template <typename T, int H, int NC>
inline Rows<T, H> load_rows(const cx<T>* p, const int* rows, int c) {
    Rows<T, H> out;
    for (int r = 0; r < H; ++r) { out.v[2 * r] = p[rows[r] * NC + c].re; out.v[2 * r + 1] = p[rows[r] * NC + c].im; }
    return out;
}

}  // namespace hpcflow
