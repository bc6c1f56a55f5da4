// The CPython module hpcflow.kernels._cpu: entry points that take data pointers and sizes
// (hpcflow/kernels/binding.py checks the tensors and passes them), dispatch on dtype, dimension
// and colours, and release the GIL while the kernels run. No torch headers: the module builds
// in seconds and does not depend on the torch version it runs with.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "gauge.h"
#include "phi4.h"
#include "wilson.h"

namespace {

using hpcflow::cx;

template <typename T>
T* ptr(unsigned long long address) {
    return reinterpret_cast<T*>(static_cast<uintptr_t>(address));
}

// callers check colours in 1..3 first
template <typename F>
void with_colours(int colours, F&& run) {
    if (colours == 1) run(std::integral_constant<int, 1>{});
    else if (colours == 2) run(std::integral_constant<int, 2>{});
    else run(std::integral_constant<int, 3>{});
}

template <typename F>
void with_precision(int is_double, F&& run) {
    if (is_double) run(double{});
    else run(float{});
}

// wilson(psi, out, links, neighbours, local or 0, diag, dims, colours, volume, batch, double, threads)
PyObject* wilson(PyObject*, PyObject* args) {
    unsigned long long psi, out, links, nbr, local;
    double diag;
    int dims, colours, is_double, threads;
    long long volume, batch;
    if (!PyArg_ParseTuple(args, "KKKKKdiiLLpi", &psi, &out, &links, &nbr, &local, &diag, &dims, &colours, &volume,
                          &batch, &is_double, &threads))
        return nullptr;
    if ((dims != 2 && dims != 4) || colours < 1 || colours > 3) {
        PyErr_Format(PyExc_ValueError, "d = %d, N = %d: the compiled operator has d = 2, 4 and N = 1, 2, 3", dims, colours);
        return nullptr;
    }
    Py_BEGIN_ALLOW_THREADS
    with_precision(is_double, [&](auto real) {
        using T = decltype(real);
        with_colours(colours, [&](auto nc) {
            constexpr int NC = decltype(nc)::value;
            auto run = [&](auto d) {
                hpcflow::wilson_apply<T, decltype(d)::value, NC>(ptr<const cx<T>>(psi), ptr<cx<T>>(out), ptr<const cx<T>>(links),
                                                                 ptr<const int64_t>(nbr), local ? ptr<const cx<T>>(local) : nullptr,
                                                                 T(diag), volume, batch, threads);
            };
            if (dims == 2) run(std::integral_constant<int, 2>{});
            else run(std::integral_constant<int, 4>{});
        });
    });
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

// N = 1, 2, 3 (what with_colours instantiates), else a ValueError "the compiled <what> N = 1, 2, 3"
bool colours_in_range(int colours, const char* what) {
    if (colours >= 1 && colours <= 3) return true;
    PyErr_Format(PyExc_ValueError, "N = %d: the compiled %s N = 1, 2, 3", colours, what);
    return false;
}

// hop(psi, out, links, neighbours, dims, colours, mu, forward, leading, volume, spins, double, threads)
PyObject* hop(PyObject*, PyObject* args) {
    unsigned long long psi, out, links, nbr;
    int dims, colours, mu, forward, spins, is_double, threads;
    long long leading, volume;
    if (!PyArg_ParseTuple(args, "KKKKiiipLLipi", &psi, &out, &links, &nbr, &dims, &colours, &mu, &forward, &leading, &volume,
                          &spins, &is_double, &threads))
        return nullptr;
    if (!colours_in_range(colours, "transport has")) return nullptr;
    Py_BEGIN_ALLOW_THREADS
    with_precision(is_double, [&](auto real) {
        using T = decltype(real);
        with_colours(colours, [&](auto nc) {
            hpcflow::hop_apply<T, decltype(nc)::value>(ptr<const cx<T>>(psi), ptr<cx<T>>(out), ptr<const cx<T>>(links),
                                                       ptr<const int64_t>(nbr), dims, mu, forward, leading, volume, spins,
                                                       threads);
        });
    });
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

// phi4_md(phi, pi, rows, (phi0, pi0, phi1, pi1), nrows, ncols, batch, dims, beta, four_lam, first_kick,
//         [(a, b), ...], double, threads) -> the pair (0 or 1) that holds the end point
PyObject* phi4_md(PyObject*, PyObject* args) {
    unsigned long long phi, pi, rows, b0, b1, b2, b3;
    long long nrows, ncols, batch;
    int dims, is_double, threads;
    double beta, four_lam, first_kick;
    PyObject* move_list;
    if (!PyArg_ParseTuple(args, "KKK(KKKK)LLLidddOpi", &phi, &pi, &rows, &b0, &b1, &b2, &b3, &nrows, &ncols, &batch, &dims,
                          &beta, &four_lam, &first_kick, &move_list, &is_double, &threads))
        return nullptr;
    if (dims < 2 || dims > 4) {
        PyErr_Format(PyExc_ValueError, "d = %d: the compiled phi^4 kernel has d = 2, 3, 4", dims);
        return nullptr;
    }
    std::vector<std::pair<double, double>> moves;
    PyObject* seq = PySequence_Fast(move_list, "moves must be a sequence of (drift, kick) pairs");
    if (!seq) return nullptr;
    for (Py_ssize_t k = 0; k < PySequence_Fast_GET_SIZE(seq); ++k) {
        double a, b;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, k), "dd", &a, &b)) {
            Py_DECREF(seq);
            return nullptr;
        }
        moves.emplace_back(a, b);
    }
    Py_DECREF(seq);
    int where = 0;
    Py_BEGIN_ALLOW_THREADS
    with_precision(is_double, [&](auto real) {
        using T = decltype(real);
        T* const phi_buf[2] = {ptr<T>(b0), ptr<T>(b2)};
        T* const pi_buf[2] = {ptr<T>(b1), ptr<T>(b3)};
        const hpcflow::Phi4Couplings<T> g{T(beta), T(four_lam)};
        auto run = [&](auto d) {
            where = hpcflow::phi4_trajectory<T, decltype(d)::value>(ptr<const T>(phi), ptr<const T>(pi), phi_buf, pi_buf,
                                                                    ptr<const int64_t>(rows), nrows, ncols, batch, g,
                                                                    T(first_kick), moves, threads);
        };
        if (dims == 2) run(std::integral_constant<int, 2>{});
        else if (dims == 3) run(std::integral_constant<int, 3>{});
        else run(std::integral_constant<int, 4>{});
    });
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(where);
}

// gauge_force(links, neighbours, out, coefficient, dims, colours, volume, batch, double, threads)
PyObject* gauge_force(PyObject*, PyObject* args) {
    unsigned long long links, nbr, out;
    double coefficient;
    int dims, colours, is_double, threads;
    long long volume, batch;
    if (!PyArg_ParseTuple(args, "KKKdiiLLpi", &links, &nbr, &out, &coefficient, &dims, &colours, &volume, &batch,
                          &is_double, &threads) || !colours_in_range(colours, "gauge kernels have"))
        return nullptr;
    Py_BEGIN_ALLOW_THREADS
    with_precision(is_double, [&](auto real) {
        using T = decltype(real);
        with_colours(colours, [&](auto nc) {
            hpcflow::wilson_gauge_force<T, decltype(nc)::value>(ptr<const cx<T>>(links), ptr<const int64_t>(nbr),
                                                                ptr<cx<T>>(out), T(coefficient), dims, volume, batch,
                                                                threads);
        });
    });
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

// su_n_drift(momenta, links, out, eps, colours, count, double, threads)
PyObject* su_n_drift(PyObject*, PyObject* args) {
    unsigned long long momenta, links, out;
    double eps;
    int colours, is_double, threads;
    long long count;
    if (!PyArg_ParseTuple(args, "KKKdiLpi", &momenta, &links, &out, &eps, &colours, &count, &is_double, &threads) ||
        !colours_in_range(colours, "gauge kernels have"))
        return nullptr;
    Py_BEGIN_ALLOW_THREADS
    with_precision(is_double, [&](auto real) {
        using T = decltype(real);
        with_colours(colours, [&](auto nc) {
            hpcflow::su_n_drift<T, decltype(nc)::value>(ptr<const cx<T>>(momenta), ptr<const cx<T>>(links),
                                                        ptr<cx<T>>(out), T(eps), count, threads);
        });
    });
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

template <int D>
PyObject* basis_tables() {
    using B = hpcflow::Basis<D>;
    PyObject* out = PyTuple_New(4);  // perm, power of i (A_mu); perm, power (A_mu^+): nested tuples (d, H)
    const int (*tables[4])[B::H] = {B::perm, B::phase, B::perm_dag, B::phase_dag};
    for (int k = 0; k < 4; ++k) {
        PyObject* rows = PyTuple_New(D);
        for (int mu = 0; mu < D; ++mu) {
            PyObject* row = PyTuple_New(B::H);
            for (int r = 0; r < B::H; ++r) PyTuple_SET_ITEM(row, r, PyLong_FromLong(tables[k][mu][r]));
            PyTuple_SET_ITEM(rows, mu, row);
        }
        PyTuple_SET_ITEM(out, k, rows);
    }
    return out;
}

// spin_basis(d): the kernel's spin projection tables
PyObject* spin_basis(PyObject*, PyObject* args) {
    int dims;
    if (!PyArg_ParseTuple(args, "i", &dims)) return nullptr;
    if (dims == 2) return basis_tables<2>();
    if (dims == 4) return basis_tables<4>();
    PyErr_Format(PyExc_ValueError, "d = %d: the compiled operator has d = 2, 4", dims);
    return nullptr;
}

PyMethodDef methods[] = {
    {"wilson", wilson, METH_VARARGS, "D psi (B, V, S, N) into out"},
    {"hop", hop, METH_VARARGS, "T_{+-mu} psi (M, V, S, N) into out"},
    {"phi4_md", phi4_md, METH_VARARGS, "phi^4 molecular dynamics of (B, V) fields through two buffer pairs"},
    {"gauge_force", gauge_force, METH_VARARGS, "Wilson-action force (B, d, V, N, N) of links into out"},
    {"su_n_drift", su_n_drift, METH_VARARGS, "exp(i eps P) U for (count, N, N) momenta and links into out"},
    {"spin_basis", spin_basis, METH_VARARGS, "(perm, power, perm_dag, power_dag), each (d, H)"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cpu", "hpcflow's compiled CPU kernels (see hpcflow/kernels/binding.py)",
                      -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__cpu() { return PyModule_Create(&module); }
