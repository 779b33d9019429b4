#pragma once
// cpu::Backend: the Backend concept (concepts.hpp) over rlxf's CPU kernels. Storage and
// arithmetic are float; buffers are host vectors (256-byte aligned); ops run synchronously
// on the calling thread's rlxf::parallel_for pool, so synchronize() has nothing to wait for.
// Every backward adds into its gradients (the CPU kernels' own convention).
#include <algorithm>
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "rlxf/concepts.hpp"
#include "rlxf/core/backend.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/cpu/activations.hpp"
#include "rlxf/cpu/attention.hpp"
#include "rlxf/cpu/gemm.hpp"
#include "rlxf/cpu/layernorm.hpp"

namespace rlxf::cpu {

class Backend {
 public:
  using value_type = float;
  template <class T>
  using Buffer = std::vector<T, AlignedAllocator<T>>;

  static constexpr std::string_view name() { return "cpu"; }

  // n value-initialised (zero) elements.
  template <class T>
  Buffer<T> allocate(std::size_t n) const {
    return Buffer<T>(n);
  }

  void upload(std::span<const float> host, Buffer<float>& buf) const {
    RLXF_REQUIRE(host.size() == buf.size(), "cpu::Backend::upload: ", host.size(), " host values for a buffer of ",
                 buf.size());
    std::copy(host.begin(), host.end(), buf.begin());
  }
  void download(const Buffer<float>& buf, std::span<float> host) const {
    RLXF_REQUIRE(host.size() == buf.size(), "cpu::Backend::download: a buffer of ", buf.size(), " values into ",
                 host.size(), " host values");
    std::copy(buf.begin(), buf.end(), host.begin());
  }
  void synchronize() const {}

  void gemm(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A,
            std::size_t lda, const float* B, std::size_t ldb, float beta, float* C, std::size_t ldc) const {
    cpu::gemm<float>(trans(ta), trans(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }

  void attention_forward(const float* q, const float* k, const float* v, float* o, float* lse,
                         const AttentionDims& dims, const AttentionSettings& settings) const {
    cpu::attention_forward<float>(q, k, v, o, lse, shape(dims), options(settings));
  }
  void attention_backward(const float* q, const float* k, const float* v, const float* o, const float* lse,
                          const float* dout, float* dq, float* dk, float* dv, const AttentionDims& dims,
                          const AttentionSettings& settings) const {
    cpu::attention_backward<float>(q, k, v, o, lse, dout, dq, dk, dv, shape(dims), options(settings));
  }

  void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                         std::size_t N, std::size_t C, float eps) const {
    cpu::layernorm_forward<float>(x, gamma, beta, y, mean, rstd, N, C, eps);
  }
  void layernorm_backward(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd,
                          float* dx, float* dgamma, float* dbeta, std::size_t N, std::size_t C) const {
    cpu::layernorm_backward<float>(dy, x, gamma, mean, rstd, dx, dgamma, dbeta, N, C);
  }

  void gelu_forward(const float* x, float* y, std::size_t n) const { cpu::gelu_forward<float>(x, y, n, GeluForm::tanh); }
  void gelu_backward(const float* x, const float* dy, float* dx, std::size_t n) const {
    cpu::gelu_backward<float>(x, dy, dx, n, GeluForm::tanh);
  }

  // The concept's plain structs as the CPU kernels take them.
  static cpu::Trans trans(Transpose t) { return t == Transpose::yes ? cpu::Trans::yes : cpu::Trans::no; }
  static cpu::AttentionShape shape(const AttentionDims& d) {
    return {d.batch, d.q_heads, d.kv_heads, d.q_len, d.kv_len, d.head_dim, d.kv_capacity};
  }
  static cpu::AttentionOptions options(const AttentionSettings& s) {
    cpu::AttentionOptions o;
    o.causal = s.causal;
    o.scale = s.scale;
    o.key_mask = s.key_mask;
    return o;
  }
};

static_assert(rlxf::Backend<Backend>, "cpu::Backend must model rlxf::Backend");

}  // namespace rlxf::cpu
