// A plain complex number for the kernels: std::complex's operator* calls __muldc3 (NaN and
// infinity handling) unless -ffast-math is on, which the bitwise-reproducible phi^4 kernel
// must not use. Two reals, so arrays of cx<T> have the layout of torch's complex tensors.
#pragma once

namespace hpcflow {

template <typename T>
struct cx {
    T re, im;
};

template <typename T>
inline cx<T> conj(cx<T> a) { return {a.re, -a.im}; }
template <typename T>
inline cx<T> operator+(cx<T> a, cx<T> b) { return {a.re + b.re, a.im + b.im}; }
template <typename T>
inline cx<T> operator-(cx<T> a, cx<T> b) { return {a.re - b.re, a.im - b.im}; }
template <typename T>
inline cx<T> operator*(cx<T> a, cx<T> b) { return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re}; }
template <typename T>
inline cx<T> operator*(T s, cx<T> a) { return {s * a.re, s * a.im}; }
template <typename T>
inline cx<T>& operator+=(cx<T>& a, cx<T> b) { a.re += b.re; a.im += b.im; return a; }

}  // namespace hpcflow
