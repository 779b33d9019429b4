#pragma once
// cpu::Backend<T>: the TrainingBackend concept (concepts.hpp) over rlxf's CPU kernels, for
// T = float (training) and T = double (finite-difference gradient checks). Storage, statistics
// and arithmetic are T (value_type = accum_type = T); buffers are host vectors (256-byte
// aligned); ops run synchronously on the calling thread's rlxf::parallel_for pool, so
// synchronize() has nothing to wait for. Every backward adds into its gradients (the CPU
// kernels' own convention).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "rlxf/concepts.hpp"
#include "rlxf/core/backend.hpp"
#include "rlxf/core/dtype.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/core/threading.hpp"
#include "rlxf/cpu/activations.hpp"
#include "rlxf/cpu/attention.hpp"
#include "rlxf/cpu/gemm.hpp"
#include "rlxf/cpu/layernorm.hpp"
#include "rlxf/cpu/rmsnorm.hpp"
#include "rlxf/cpu/rope.hpp"
#include "rlxf/cpu/softmax.hpp"

namespace rlxf::cpu {

template <class T = float>
class Backend {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "cpu::Backend<T>: T is float or double");

 public:
  using value_type = T;
  static constexpr bool host_memory = true;  // the layers read and write its memory directly (nn/storage.hpp)
  using accum_type = T;
  template <class U>
  using Buffer = std::vector<U, AlignedAllocator<U>>;

  static constexpr std::string_view name() { return "cpu"; }

  // ---- memory ----

  // n value-initialised (zero) elements.
  template <class U>
  Buffer<U> allocate(std::size_t n) const {
    return Buffer<U>(n);
  }

  void upload(std::span<const float> host, Buffer<T>& buf) const {
    RLXF_REQUIRE(host.size() == buf.size(), "cpu::Backend::upload: ", host.size(), " host values for a buffer of ",
                 buf.size());
    std::copy(host.begin(), host.end(), buf.begin());
  }
  void download(const Buffer<T>& buf, std::span<float> host) const {
    RLXF_REQUIRE(host.size() == buf.size(), "cpu::Backend::download: a buffer of ", buf.size(), " values into ",
                 host.size(), " host values");
    std::transform(buf.begin(), buf.end(), host.begin(), [](T v) { return static_cast<float>(v); });
  }
  template <class U>
  void copy_to_device(std::span<const U> host, U* dst) const {
    std::copy(host.begin(), host.end(), dst);
  }
  template <class U>
  void copy_to_host(const U* src, std::span<U> host) const {
    std::copy_n(src, host.size(), host.begin());
  }
  template <class U>
  void copy(const U* src, U* dst, std::size_t n) const {
    std::copy_n(src, n, dst);
  }
  template <class U>
  void zero(U* p, std::size_t n) const {
    std::fill_n(p, n, U(0));
  }
  template <class From, class To>
  void cast(const From* src, To* dst, std::size_t n) const {
    if constexpr (std::is_same_v<To, bf16>)
      for (std::size_t i = 0; i < n; ++i) dst[i] = bf16::from_float(static_cast<float>(src[i]));
    else
      for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<To>(as_double(src[i]));
  }
  void synchronize() const {}

  // ---- GEMM ----

  void gemm(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K, float alpha, const T* A,
            std::size_t lda, const T* B, std::size_t ldb, float beta, T* C, std::size_t ldc) const {
    cpu::gemm<T>(trans(ta), trans(tb), M, N, K, T(alpha), A, lda, B, ldb, T(beta), C, ldc);
  }
  // C = epilogue(alpha op(A) op(B) + beta C + bias): the bias is added to C's rows first and
  // enters the product through beta, as nn::Linear has always done it.
  void gemm_epilogue(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K, float alpha,
                     const T* A, std::size_t lda, const T* B, std::size_t ldb, float beta, T* C, std::size_t ldc,
                     const T* bias, GemmEpilogue epilogue) const {
    T b = T(beta);
    if (bias) {
      RLXF_REQUIRE(beta == 0.0f, "cpu::Backend::gemm_epilogue: a bias needs beta = 0");
      for (std::size_t r = 0; r < M; ++r) std::copy_n(bias, N, C + r * ldc);
      b = T(1);
    }
    cpu::gemm<T>(trans(ta), trans(tb), M, N, K, T(alpha), A, lda, B, ldb, b, C, ldc);
    if (epilogue == GemmEpilogue::gelu_tanh)
      for (std::size_t r = 0; r < M; ++r) cpu::gelu_forward<T>(C + r * ldc, C + r * ldc, N, GeluForm::tanh);
  }
  void gemm_batched(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K, float alpha, const T* A,
                    std::size_t lda, std::size_t stride_a, const T* B, std::size_t ldb, std::size_t stride_b,
                    float beta, T* C, std::size_t ldc, std::size_t stride_c, std::size_t batch) const {
    for (std::size_t i = 0; i < batch; ++i)
      gemm(ta, tb, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta, C + i * stride_c, ldc);
  }
  void gemm_accumulate(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K, float alpha,
                       const T* A, std::size_t lda, const T* B, std::size_t ldb, T* C, std::size_t ldc) const {
    cpu::gemm<T>(trans(ta), trans(tb), M, N, K, T(alpha), A, lda, B, ldb, T(1), C, ldc);
  }

  // ---- embeddings, bias, residuals, heads ----

  // The elementwise ops below run on the calling thread: memory-bound loops that a parallel
  // region (microseconds to wake the other threads) would slow down at the sizes of a step.
  void embedding_forward(const std::int32_t* ids, const T* table, T* out, std::size_t tokens, std::size_t dim,
                         bool accumulate) const {
    for (std::size_t i = 0; i < tokens; ++i) {
      const T* row = table + static_cast<std::size_t>(ids[i]) * dim;
      T* o = out + i * dim;
      if (accumulate)
        for (std::size_t c = 0; c < dim; ++c) o[c] += row[c];
      else
        std::copy_n(row, dim, o);
    }
  }
  // In token order, so each row's sum is the same whatever the thread count.
  void embedding_backward(const std::int32_t* ids, const T* dout, T* dtable, std::size_t tokens,
                          std::size_t dim) const {
    for (std::size_t i = 0; i < tokens; ++i) {
      T* g = dtable + static_cast<std::size_t>(ids[i]) * dim;
      const T* d = dout + i * dim;
      for (std::size_t c = 0; c < dim; ++c) g[c] += d[c];
    }
  }
  void bias_backward(const T* dy, T* dbias, std::size_t rows, std::size_t cols) const {
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < cols; ++c) dbias[c] += dy[r * cols + c];
  }
  void add(const T* x, T* y, std::size_t n) const {
    for (std::size_t i = 0; i < n; ++i) y[i] += x[i];
  }
  // x = x s, each product in double and rounded once.
  void scale(T* x, std::size_t n, double s) const {
    parallel_for(n, [=](std::size_t i) { x[i] = static_cast<T>(static_cast<double>(x[i]) * s); }, parallel_grain);
  }
  // Blocks of a fixed size summed in double, then the block sums in order: the same bits for
  // any thread count.
  double sum_of_squares(const T* x, std::size_t n) const {
    constexpr std::size_t block = std::size_t{1} << 14;
    std::vector<double> partial((n + block - 1) / block, 0.0);
    parallel_for(partial.size(), [&](std::size_t b) {
      double s = 0;
      for (std::size_t i = b * block, end = std::min(n, i + block); i < end; ++i)
        s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
      partial[b] = s;
    });
    double total = 0;
    for (const double s : partial) total += s;
    return total;
  }
  void split_heads(const T* x, T* y, std::size_t batch, std::size_t len, std::size_t heads, std::size_t head_dim,
                   std::size_t capacity, std::size_t offset) const {
    RLXF_REQUIRE(offset + len <= capacity, "cpu::Backend::split_heads: rows [", offset, ", ", offset + len,
                 ") exceed the capacity ", capacity);
    for (std::size_t b = 0; b < batch; ++b)
      for (std::size_t t = 0; t < len; ++t)
        for (std::size_t h = 0; h < heads; ++h)
          std::copy_n(x + ((b * len + t) * heads + h) * head_dim, head_dim,
                      y + ((b * heads + h) * capacity + offset + t) * head_dim);
  }
  void merge_heads(const T* x, T* y, std::size_t batch, std::size_t len, std::size_t heads,
                   std::size_t head_dim) const {
    for (std::size_t b = 0; b < batch; ++b)
      for (std::size_t h = 0; h < heads; ++h)
        for (std::size_t t = 0; t < len; ++t)
          std::copy_n(x + ((b * heads + h) * len + t) * head_dim, head_dim,
                      y + ((b * len + t) * heads + h) * head_dim);
  }

  // ---- attention ----

  void attention_forward(const T* q, const T* k, const T* v, T* o, T* lse, const AttentionDims& dims,
                         const AttentionSettings& settings) const {
    cpu::attention_forward<T>(q, k, v, o, lse, shape(dims), options(settings));
  }
  void attention_backward(const T* q, const T* k, const T* v, const T* o, const T* lse, const T* dout, T* dq, T* dk,
                          T* dv, const AttentionDims& dims, const AttentionSettings& settings) const {
    cpu::attention_backward<T>(q, k, v, o, lse, dout, dq, dk, dv, shape(dims), options(settings));
  }

  // ---- norms ----

  // eps in double, so cpu::Backend<double> keeps all of it (the concept passes a float).
  void layernorm_forward(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* rstd, std::size_t N,
                         std::size_t C, double eps) const {
    cpu::layernorm_forward<T>(x, gamma, beta, y, mean, rstd, N, C, static_cast<T>(eps));
  }
  void layernorm_backward(const T* dy, const T* x, const T* gamma, const T* mean, const T* rstd, T* dx, T* dgamma,
                          T* dbeta, std::size_t N, std::size_t C) const {
    cpu::layernorm_backward<T>(dy, x, gamma, mean, rstd, dx, dgamma, dbeta, N, C);
  }
  void rmsnorm_forward(const T* x, const T* gamma, T* y, T* rstd, std::size_t N, std::size_t C, double eps) const {
    cpu::rmsnorm_forward<T>(x, gamma, y, rstd, N, C, static_cast<T>(eps));
  }
  void rmsnorm_backward(const T* dy, const T* x, const T* gamma, const T* rstd, T* dx, T* dgamma, std::size_t N,
                        std::size_t C) const {
    cpu::rmsnorm_backward<T>(dy, x, gamma, rstd, dx, dgamma, N, C);
  }

  // ---- activations, positions ----

  void gelu_forward(const T* x, T* y, std::size_t n, GeluForm form = GeluForm::tanh) const {
    cpu::gelu_forward<T>(x, y, n, form);
  }
  void gelu_backward(const T* x, const T* dy, T* dx, std::size_t n, GeluForm form = GeluForm::tanh) const {
    cpu::gelu_backward<T>(x, dy, dx, n, form);
  }
  void swiglu_forward(const T* gate, const T* up, T* y, std::size_t n) const {
    cpu::swiglu_forward<T>(gate, up, y, n);
  }
  void swiglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, std::size_t n) const {
    cpu::swiglu_backward<T>(gate, up, dy, dgate, dup, n);
  }
  void tanh_forward(const T* x, T* y, std::size_t n) const {
    for (std::size_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
  }
  void tanh_backward(const T* y, const T* dy, T* dx, std::size_t n) const {
    for (std::size_t i = 0; i < n; ++i) dx[i] += dy[i] * (T(1) - y[i] * y[i]);
  }
  void rope(T* x, const std::int32_t* positions, std::size_t tokens, std::size_t heads, std::size_t head_dim,
            double theta, std::size_t max_positions, bool inverse) const {
    for (std::size_t i = 0; i < tokens; ++i)
      RLXF_REQUIRE(positions[i] >= 0 && static_cast<std::size_t>(positions[i]) < max_positions,
                   "cpu::Backend::rope: token ", i, " has position ", positions[i], ", outside [0, ", max_positions,
                   ")");
    if (inverse)
      cpu::rope_backward<T>(x, positions, tokens, heads, head_dim, theta);
    else
      cpu::rope_forward<T>(x, positions, tokens, heads, head_dim, theta);
  }

  // ---- log-probabilities, optimizer ----

  void token_logprobs(const T* logits, const std::int32_t* targets, T* logp, T* lse, T* entropy, std::size_t rows,
                      std::size_t vocab, double temperature) const {
    cpu::token_logprobs_forward<T>(logits, targets, logp, lse, entropy, rows, vocab, temperature, ignore_target);
  }
  void token_logprobs_backward(const T* logits, const std::int32_t* targets, const T* lse, const T* dlogp,
                               T* dlogits, std::size_t rows, std::size_t vocab, double temperature) const {
    cpu::token_logprobs_backward<T>(logits, targets, lse, dlogp, dlogits, rows, vocab, temperature, ignore_target);
  }
  // optim::AdamW's update: each new m, v and p computed in double and rounded to T once.
  void adamw(T* param, const T* grad, T* m, T* v, std::size_t n, const AdamWStep& s) const {
    parallel_for(n, [&](std::size_t j) {
      const double g = static_cast<double>(grad[j]);
      m[j] = static_cast<T>(s.beta1 * static_cast<double>(m[j]) + (1 - s.beta1) * g);
      v[j] = static_cast<T>(s.beta2 * static_cast<double>(v[j]) + (1 - s.beta2) * g * g);
      const double m_hat = static_cast<double>(m[j]) / s.correction1;
      const double v_hat = static_cast<double>(v[j]) / s.correction2;
      const double p = static_cast<double>(param[j]);
      const double decay = j < s.decayed ? s.weight_decay : 0.0;
      param[j] = static_cast<T>(p - s.lr * (m_hat / (std::sqrt(v_hat) + s.eps) + decay * p));
    }, parallel_grain);
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

static_assert(rlxf::TrainingBackend<Backend<float>>, "cpu::Backend<float> must model rlxf::TrainingBackend");
static_assert(rlxf::TrainingBackend<Backend<double>>, "cpu::Backend<double> must model rlxf::TrainingBackend");

}  // namespace rlxf::cpu
