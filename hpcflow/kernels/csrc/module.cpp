// Python bindings of the CPU kernels (torch C++ extension hpcflow.kernels._cpu): argument
// checks, dtype and size dispatch; the arithmetic lives in wilson.h and phi4.h. ATen and the
// tensor casters only, not <torch/extension.h>: that compiles in 40% less time.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>

#include <utility>
#include <vector>

#include "phi4.h"
#include "wilson.h"

namespace {

using hpcflow::cx;

void check(const at::Tensor& t, const char* name) {
    TORCH_CHECK(t.device().is_cpu(), name, " must be on the CPU");
    TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

template <typename T, int D>
void wilson_typed(const at::Tensor& psi, at::Tensor& out, const at::Tensor& links, const at::Tensor& nbr,
                  const at::Tensor& local, double diag) {
    const cx<T>* blocks = local.numel() ? reinterpret_cast<const cx<T>*>(local.data_ptr()) : nullptr;
    auto run = [&](auto colours) {
        hpcflow::wilson_apply<T, D, decltype(colours)::value>(
            reinterpret_cast<const cx<T>*>(psi.data_ptr()), reinterpret_cast<cx<T>*>(out.data_ptr()),
            reinterpret_cast<const cx<T>*>(links.data_ptr()), nbr.data_ptr<int64_t>(), blocks, T(diag), links.size(0),
            psi.size(0), at::get_num_threads());
    };
    switch (links.size(-1)) {
        case 1: return run(std::integral_constant<int, 1>{});
        case 2: return run(std::integral_constant<int, 2>{});
        case 3: return run(std::integral_constant<int, 3>{});
        default: TORCH_CHECK(false, "colours N = ", links.size(-1), ": the compiled kernel has N = 1, 2, 3");
    }
}

template <typename T>
void wilson_dims(const at::Tensor& psi, at::Tensor& out, const at::Tensor& links, const at::Tensor& nbr,
                 const at::Tensor& local, double diag) {
    switch (links.size(1)) {
        case 2: return wilson_typed<T, 2>(psi, out, links, nbr, local, diag);
        case 4: return wilson_typed<T, 4>(psi, out, links, nbr, local, diag);
        default: TORCH_CHECK(false, "dimension ", links.size(1), ": the compiled operator has d = 2, 4");
    }
}

template <int D>
std::pair<at::Tensor, at::Tensor> basis_tables() {
    using B = hpcflow::Basis<D>;
    auto perm = at::empty({2, D, B::H}, at::kLong), phase = at::empty({2, D, B::H}, at::kLong);
    for (int mu = 0; mu < D; ++mu)
        for (int r = 0; r < B::H; ++r) {
            perm[0][mu][r] = B::perm[mu][r];
            perm[1][mu][r] = B::perm_dag[mu][r];
            phase[0][mu][r] = B::phase[mu][r];
            phase[1][mu][r] = B::phase_dag[mu][r];
        }
    return {perm, phase};
}

// the kernel's spin projection tables (perm, power of i), each (2, d, H): A_mu in row 0, A_mu^+ in row 1
std::pair<at::Tensor, at::Tensor> spin_basis(int64_t dims) {
    TORCH_CHECK(dims == 2 || dims == 4, "dimension ", dims, ": the compiled operator has d = 2, 4");
    return dims == 2 ? basis_tables<2>() : basis_tables<4>();
}

// D psi for spinors (B, V, S, N); links (V, d, N, N); local (V, 2, HN, HN) or empty (then diag * psi)
at::Tensor wilson(const at::Tensor& psi, const at::Tensor& links, const at::Tensor& nbr,
                     const at::Tensor& local, double diag) {
    for (auto [t, name] : {std::pair{&psi, "psi"}, {&links, "links"}, {&nbr, "neighbours"}, {&local, "local"}}) check(*t, name);
    TORCH_CHECK(psi.dim() == 4 && links.dim() == 4, "psi (B, V, S, N) and links (V, d, N, N) expected");
    TORCH_CHECK(psi.scalar_type() == links.scalar_type(), "psi and links must have the same dtype");
    TORCH_CHECK(psi.size(1) == links.size(0) && psi.size(3) == links.size(3) && psi.size(2) == (links.size(1) == 4 ? 4 : 2),
                "psi ", psi.sizes(), " does not fit links ", links.sizes());
    TORCH_CHECK(nbr.size(0) == links.size(0) && nbr.size(1) == 2 * links.size(1), "neighbour table");
    auto out = at::empty_like(psi);
    if (psi.scalar_type() == at::kComplexDouble)
        wilson_dims<double>(psi, out, links, nbr, local, diag);
    else if (psi.scalar_type() == at::kComplexFloat)
        wilson_dims<float>(psi, out, links, nbr, local, diag);
    else
        TORCH_CHECK(false, "dtype ", psi.scalar_type(), ": expected complex64 or complex128");
    return out;
}

template <typename T>
void hop_typed(const at::Tensor& psi, at::Tensor& out, const at::Tensor& links, const at::Tensor& nbr, int mu,
               bool forward) {
    const int dims = int(links.size(1));
    const int64_t volume = links.size(0), spins = psi.size(-2);
    const int64_t leading = psi.numel() / (volume * spins * links.size(-1));
    auto run = [&](auto colours) {
        constexpr int NC = decltype(colours)::value;
        hpcflow::hop_apply<T, NC>(reinterpret_cast<const cx<T>*>(psi.data_ptr()), reinterpret_cast<cx<T>*>(out.data_ptr()),
                                  reinterpret_cast<const cx<T>*>(links.data_ptr()), nbr.data_ptr<int64_t>(), dims, mu, forward,
                                  leading, volume, int(spins), at::get_num_threads());
    };
    switch (links.size(-1)) {
        case 1: return run(std::integral_constant<int, 1>{});
        case 2: return run(std::integral_constant<int, 2>{});
        case 3: return run(std::integral_constant<int, 3>{});
        default: TORCH_CHECK(false, "colours N = ", links.size(-1), ": the compiled transport has N = 1, 2, 3");
    }
}

// T_{+-mu} psi for fields (..., V, S, N)
at::Tensor hop(const at::Tensor& psi, const at::Tensor& links, const at::Tensor& nbr, int64_t mu, bool forward) {
    for (auto [t, name] : {std::pair{&psi, "psi"}, {&links, "links"}, {&nbr, "neighbours"}}) check(*t, name);
    TORCH_CHECK(psi.scalar_type() == links.scalar_type(), "psi and links must have the same dtype");
    TORCH_CHECK(psi.dim() >= 3 && psi.size(-3) == links.size(0) && psi.size(-1) == links.size(-1),
                "psi ", psi.sizes(), " does not fit links ", links.sizes());
    TORCH_CHECK(mu >= 0 && mu < links.size(1), "direction ", mu, " out of range");
    auto out = at::empty_like(psi);
    if (psi.scalar_type() == at::kComplexDouble)
        hop_typed<double>(psi, out, links, nbr, int(mu), forward);
    else if (psi.scalar_type() == at::kComplexFloat)
        hop_typed<float>(psi, out, links, nbr, int(mu), forward);
    else
        TORCH_CHECK(false, "dtype ", psi.scalar_type(), ": expected complex64 or complex128");
    return out;
}

template <typename T, int D>
int64_t phi4_typed(const at::Tensor& phi, const at::Tensor& pi, const at::Tensor& rows, double beta, double four_lam,
                   double first_kick, const std::vector<std::pair<double, double>>& moves,
                   const std::vector<at::Tensor>& buffers) {
    T* const phi_buf[2] = {buffers[0].data_ptr<T>(), buffers[2].data_ptr<T>()};
    T* const pi_buf[2] = {buffers[1].data_ptr<T>(), buffers[3].data_ptr<T>()};
    const int64_t nrows = rows.size(0), ncols = phi.size(1) / nrows, batch = phi.size(0);
    const hpcflow::Phi4Couplings<T> g{T(beta), T(four_lam)};
    return hpcflow::phi4_trajectory<T, D>(phi.data_ptr<T>(), pi.data_ptr<T>(), phi_buf, pi_buf, rows.data_ptr<int64_t>(),
                                          nrows, ncols, batch, g, T(first_kick), moves, at::get_num_threads());
}

template <typename T>
int64_t phi4_dims(const at::Tensor& phi, const at::Tensor& pi, const at::Tensor& rows, double beta, double four_lam,
                  double first_kick, const std::vector<std::pair<double, double>>& moves,
                  const std::vector<at::Tensor>& buffers) {
    switch (rows.size(1) / 2 + 1) {
        case 2: return phi4_typed<T, 2>(phi, pi, rows, beta, four_lam, first_kick, moves, buffers);
        case 3: return phi4_typed<T, 3>(phi, pi, rows, beta, four_lam, first_kick, moves, buffers);
        case 4: return phi4_typed<T, 4>(phi, pi, rows, beta, four_lam, first_kick, moves, buffers);
        default: TORCH_CHECK(false, "dimension ", rows.size(1) / 2 + 1, ": the compiled phi^4 kernel has d = 2, 3, 4");
    }
}

// The first kick and the drift-kick moves from (phi, pi), which stay intact, through the buffer
// pairs (buffers[0], buffers[1]) and (buffers[2], buffers[3]); returns the pair (0 or 1) that holds
// the end point: pair 0 after an even number of moves. Fields (B, V) float32 or float64, V = rows x
// the last lattice axis; rows (R, 2(d-1)): the neighbouring rows along the other axes.
int64_t phi4_md(const at::Tensor& phi, const at::Tensor& pi, const at::Tensor& rows, double beta, double four_lam,
                double first_kick, const std::vector<std::pair<double, double>>& moves,
                const std::vector<at::Tensor>& buffers) {
    for (auto [t, name] : {std::pair{&phi, "phi"}, {&pi, "pi"}, {&rows, "rows"}}) check(*t, name);
    TORCH_CHECK(phi.sizes() == pi.sizes() && phi.scalar_type() == pi.scalar_type(), "phi and pi must match");
    TORCH_CHECK(phi.dim() == 2 && rows.dim() == 2 && rows.size(0) > 0 && phi.size(1) % rows.size(0) == 0,
                "phi (B, V) with V a multiple of the rows ", rows.size(0), " expected");
    TORCH_CHECK(buffers.size() == 4, "four buffers (phi, pi, phi, pi) expected");
    for (const auto& b : buffers) {
        check(b, "buffer");
        TORCH_CHECK(b.sizes() == phi.sizes() && b.scalar_type() == phi.scalar_type(), "a buffer does not match phi");
        TORCH_CHECK(b.data_ptr() != phi.data_ptr() && b.data_ptr() != pi.data_ptr(), "a buffer aliases the input");
    }
    if (phi.scalar_type() == at::kDouble) return phi4_dims<double>(phi, pi, rows, beta, four_lam, first_kick, moves, buffers);
    TORCH_CHECK(phi.scalar_type() == at::kFloat, "dtype ", phi.scalar_type(), ": expected float32 or float64");
    return phi4_dims<float>(phi, pi, rows, beta, four_lam, first_kick, moves, buffers);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "hpcflow's compiled CPU kernels: Wilson(-clover) operator, parallel transports, phi^4 molecular dynamics";
    auto nogil = py::call_guard<py::gil_scoped_release>();
    m.def("wilson", &wilson, "D psi (B, V, S, N)", nogil);
    m.def("spin_basis", &spin_basis, "the kernel's spin projection tables (perm, power of i), (2, d, H) each");
    m.def("hop", &hop, "T_{+-mu} psi (..., V, S, N)", nogil);
    m.def("phi4_md", &phi4_md, "phi^4 molecular dynamics of a batch of chains (B, V) through two buffer pairs", nogil);
}
