// The Backend concept (rlxf/concepts.hpp) and its models: cpu::Backend and the CUDA backend
// with its kernels run by the CPU emulator, cuda::Backend<cuda::emulate::Device> (the GPU
// device, cuda::Backend<cuda::Gpu>, is tested in tests/cuda/test_cuda_gpu_backend.cpp).
//
// One function written once against the concept, a pre-LN attention sub-block forward and
// backward (layernorm -> per-head q, k, v GEMMs -> causal attention, head_dim 64 -> output
// GEMMs summed over heads -> GELU), runs on three models:
//   ref    cpu::Backend: f32 storage and arithmetic, on bf16-rounded inputs (its f32 error,
//          ~1e-6 relative, is negligible against bf16's 2^-9; it stands for the exact value);
//   naive  RoundingBackend (below, a third model defined here): the CPU kernels with every
//          stored activation and gradient rounded to bf16, i.e. what any bf16-storage
//          implementation with exact f32 arithmetic inside each op must at least lose;
//   emu    cuda::Backend<emulate::Device>: bf16 storage, the CUDA kernels (tensor-core
//          GEMMs, FlashAttention-2 forward / backward, row kernels) emulated.
// Tolerance, by rule (FlashAttention's): for each output and gradient, with err(z) =
// max_i |z_i - ref_i|,
//     err(emu) <= 2 err(naive) + ulp_bf16(max_i |ref_i|),
// the floor being one bf16 ulp at the tensor's scale: the CUDA kernels also round inside an
// op where the naive model does not (P and dS to bf16 in attention, each head's GEMM partial
// sum to bf16 through beta = 1, attention gradients twice: see cuda/backend.hpp), each such
// rounding worth at most half an ulp of an intermediate of at most the tensor's scale.
//
// Also: every backward ADDS into its gradients on every model (the concept's contract;
// gradient buffers start non-zero in the block test, and a backward run twice doubles them);
// the Add kernel (cuda/elementwise/add.hpp) bit-exact under the emulator; unsupported
// arguments throw before launching; types missing an op do not model Backend.
// Set RLXF_TEST_VERBOSE=1 to print each measured error against its tolerance.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <typeindex>
#include <vector>

#include "rlxf/concepts.hpp"
#include "rlxf/core/backend.hpp"
#include "rlxf/core/dtype.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/cpu/backend.hpp"
#include "rlxf/cuda/backend.hpp"
#include "rlxf/cuda/elementwise/add.hpp"
#include "rlxf/cuda/emulate/device.hpp"
#include "rlxf/cuda/emulate/launch.hpp"
#include "bf16_check.hpp"

namespace {

using rlxf::bf16;
using rlxf::Transpose;
namespace cuda = rlxf::cuda;
namespace emu = rlxf::cuda::emulate;
using EmuBackend = cuda::Backend<emu::Device>;
using rlxf::test::random_bf16_floats;
using rlxf::test::round_bf16;
using rlxf::test::ulp_bf16;

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, double(std::abs(x)));
  return m;
}
double max_err(const std::vector<float>& out, const std::vector<float>& ref) {
  REQUIRE(out.size() == ref.size());
  double e = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const double d = std::abs(double(out[i]) - double(ref[i]));
    if (std::isnan(d)) return INFINITY;
    e = std::max(e, d);
  }
  return e;
}
bool verbose() { return std::getenv("RLXF_TEST_VERBOSE") != nullptr; }

// ---- a third model of the concept: the CPU kernels with bf16 storage ----

// cpu::Backend with every value_type output rounded to bf16 after each op (statistics and
// parameter gradients, accum_type, stay f32): bf16 storage around exact-f32 ops, the naive
// baseline of the tolerance rule.
class RoundingBackend {
 public:
  using value_type = float;
  using accum_type = float;
  template <class T>
  using Buffer = rlxf::cpu::Backend<>::Buffer<T>;
  static constexpr std::string_view name() { return "cpu-bf16-storage"; }

  template <class T>
  Buffer<T> allocate(std::size_t n) const {
    return cpu_.allocate<T>(n);
  }
  void upload(std::span<const float> host, Buffer<float>& buf) const {
    cpu_.upload(host, buf);
    round(buf.data(), buf.size());
  }
  void download(const Buffer<float>& buf, std::span<float> host) const { cpu_.download(buf, host); }
  void copy_to_device(std::span<const float> host, float* dst) const { cpu_.copy_to_device(host, dst); }
  void synchronize() const {}

  void gemm(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A,
            std::size_t lda, const float* B, std::size_t ldb, float beta, float* C, std::size_t ldc) const {
    cpu_.gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    for (std::size_t i = 0; i < M; ++i) round(C + i * ldc, N);
  }
  void attention_forward(const float* q, const float* k, const float* v, float* o, float* lse,
                         const rlxf::AttentionDims& d, const rlxf::AttentionSettings& s) const {
    cpu_.attention_forward(q, k, v, o, lse, d, s);
    round(o, d.q_elements());
  }
  void attention_backward(const float* q, const float* k, const float* v, const float* o, const float* lse,
                          const float* dout, float* dq, float* dk, float* dv, const rlxf::AttentionDims& d,
                          const rlxf::AttentionSettings& s) const {
    cpu_.attention_backward(q, k, v, o, lse, dout, dq, dk, dv, d, s);
    round(dq, d.q_elements());
    round(dk, d.kv_elements());
    round(dv, d.kv_elements());
  }
  void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                         std::size_t N, std::size_t C, float eps) const {
    cpu_.layernorm_forward(x, gamma, beta, y, mean, rstd, N, C, eps);
    round(y, N * C);
  }
  void layernorm_backward(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd,
                          float* dx, float* dgamma, float* dbeta, std::size_t N, std::size_t C) const {
    cpu_.layernorm_backward(dy, x, gamma, mean, rstd, dx, dgamma, dbeta, N, C);
    round(dx, N * C);
  }
  void gelu_forward(const float* x, float* y, std::size_t n) const {
    cpu_.gelu_forward(x, y, n);
    round(y, n);
  }
  void gelu_backward(const float* x, const float* dy, float* dx, std::size_t n) const {
    cpu_.gelu_backward(x, dy, dx, n);
    round(dx, n);
  }

 private:
  static void round(float* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) p[i] = round_bf16(p[i]);
  }
  rlxf::cpu::Backend<> cpu_;
};

// ---- the generic code: a pre-LN attention sub-block, written once ----

struct BlockShape {
  std::size_t batch, seq, heads, head_dim;
  std::size_t channels() const { return heads * head_dim; }
  std::size_t tokens() const { return batch * seq; }
};

// Host-side tensors (f32) in and out of the block.
struct BlockData {
  // inputs: x (tokens, C); gamma, beta (C); w_qkv (3C, C) rows [q; k; v], head h's rows
  // h*d .. h*d+d of each; w_o (C, C); dy (tokens, C), the upstream gradient of y
  std::vector<float> x, gamma, beta, w_qkv, w_o, dy;
  // gradients: their values before the backward (added to), then after
  std::vector<float> dx, dgamma, dbeta, dw_qkv, dw_o;
  // outputs: z = attention output projection, y = gelu(z)
  std::vector<float> z, y;
};

BlockData random_block(const BlockShape& s, std::uint32_t seed) {
  const std::size_t C = s.channels(), N = s.tokens();
  const float w_scale = 1.0f / std::sqrt(float(C));
  BlockData d;
  d.x = random_bf16_floats(N * C, seed + 1);
  for (std::size_t i = 0; i < N; ++i)  // rows with their own offset and spread
    for (std::size_t c = 0; c < C; ++c)
      d.x[i * C + c] = round_bf16(0.5f - 0.01f * float(i) + (1.0f + 0.005f * float(i)) * d.x[i * C + c]);
  d.gamma = random_bf16_floats(C, seed + 2, 0.2f);
  for (auto& g : d.gamma) g = round_bf16(1.0f + g);
  d.beta = random_bf16_floats(C, seed + 3, 0.1f);
  d.w_qkv = random_bf16_floats(3 * C * C, seed + 4, 2.0f * w_scale);  // scores of O(1) spread
  d.w_o = random_bf16_floats(C * C, seed + 5, w_scale);
  d.dy = random_bf16_floats(N * C, seed + 6);
  // Gradients already holding a contribution (say, of an earlier micro-batch), of about the
  // size of the block's own (max |dx| ~ 20, |dgamma|, |dbeta| ~ 80, |dW| ~ 60).
  d.dx = random_bf16_floats(N * C, seed + 7, 4.0f);
  d.dgamma = random_bf16_floats(C, seed + 8, 20.0f);
  d.dbeta = random_bf16_floats(C, seed + 9, 20.0f);
  d.dw_qkv = random_bf16_floats(3 * C * C, seed + 10, 12.0f);
  d.dw_o = random_bf16_floats(C * C, seed + 11, 12.0f);
  return d;
}

// Forward and backward of the block on backend B; returns the outputs and the gradients
// (the inputs' gradient fields were added to).
//   h = layernorm(x);  q_h, k_h, v_h = h W_{q,k,v,h}^T (per batch row and head, laid out
//   (batch, heads, seq, d) by the GEMMs' strides);  o = causal attention(q, k, v);
//   z = sum_h o_h W_o[:, h]^T;  y = gelu(z).
template <rlxf::Backend B>
BlockData run_block(B& b, const BlockShape& s, const BlockData& in) {
  using T = typename B::value_type;
  constexpr Transpose no = Transpose::no, yes = Transpose::yes;
  const std::size_t C = s.channels(), N = s.tokens(), S = s.seq, H = s.heads, d = s.head_dim;
  auto load = [&](const std::vector<float>& host) {
    auto buf = b.template allocate<T>(host.size());
    b.upload(host, buf);
    return buf;
  };
  auto fetch = [&](const auto& buf) {
    std::vector<float> host(buf.size());
    b.download(buf, host);
    return host;
  };
  auto x = load(in.x), gamma = load(in.gamma), beta = load(in.beta), w_qkv = load(in.w_qkv), w_o = load(in.w_o);
  const rlxf::AttentionDims dims{s.batch, H, H, S, S, d, 0};
  rlxf::AttentionSettings settings;
  settings.causal = true;

  // forward
  auto h = b.template allocate<T>(N * C);
  auto mean = b.template allocate<float>(N), rstd = b.template allocate<float>(N);
  b.layernorm_forward(x.data(), gamma.data(), beta.data(), h.data(), mean.data(), rstd.data(), N, C, 1e-5f);
  auto q = b.template allocate<T>(dims.q_elements()), k = b.template allocate<T>(dims.kv_elements()),
       v = b.template allocate<T>(dims.kv_elements());
  T* qkv[3] = {q.data(), k.data(), v.data()};
  // head (bt, hd) of tensor `which` (0 = q, 1 = k, 2 = v): its rows of W_qkv, its (S, d) block
  auto w_rows = [&](std::size_t which, std::size_t hd) { return (which * C + hd * d) * C; };
  auto head = [&](std::size_t bt, std::size_t hd) { return (bt * H + hd) * S * d; };
  for (std::size_t bt = 0; bt < s.batch; ++bt)
    for (std::size_t hd = 0; hd < H; ++hd)
      for (std::size_t which = 0; which < 3; ++which)
        b.gemm(no, yes, S, d, C, 1.0f, h.data() + bt * S * C, C, w_qkv.data() + w_rows(which, hd), C, 0.0f,
               qkv[which] + head(bt, hd), d);
  auto o = b.template allocate<T>(dims.q_elements());
  auto lse = b.template allocate<float>(dims.rows());
  b.attention_forward(q.data(), k.data(), v.data(), o.data(), lse.data(), dims, settings);
  auto z = b.template allocate<T>(N * C);
  for (std::size_t bt = 0; bt < s.batch; ++bt)
    for (std::size_t hd = 0; hd < H; ++hd)
      b.gemm(no, yes, S, C, d, 1.0f, o.data() + head(bt, hd), d, w_o.data() + hd * d, C, hd == 0 ? 0.0f : 1.0f,
             z.data() + bt * S * C, C);
  auto y = b.template allocate<T>(N * C);
  b.gelu_forward(z.data(), y.data(), N * C);

  // backward: every gradient buffer is added to (dz, do, dq, dk, dv, dh start at zero)
  auto load_accum = [&](const std::vector<float>& host) {  // parameter gradients of the norm: accum_type
    auto buf = b.template allocate<typename B::accum_type>(host.size());
    b.copy_to_device(std::span<const float>(host), buf.data());
    return buf;
  };
  auto fetch_accum = [&](const auto& buf) { return std::vector<float>(buf.begin(), buf.end()); };  // host memory
  auto dy = load(in.dy), dx = load(in.dx), dw_qkv = load(in.dw_qkv), dw_o = load(in.dw_o);
  auto dgamma = load_accum(in.dgamma), dbeta = load_accum(in.dbeta);
  auto dz = b.template allocate<T>(N * C);
  b.gelu_backward(z.data(), dy.data(), dz.data(), N * C);
  auto d_o = b.template allocate<T>(dims.q_elements());
  for (std::size_t bt = 0; bt < s.batch; ++bt)
    for (std::size_t hd = 0; hd < H; ++hd) {
      // do_h = dz W_o[:, h];  dW_o[:, h] += dz^T o_h
      b.gemm(no, no, S, d, C, 1.0f, dz.data() + bt * S * C, C, w_o.data() + hd * d, C, 0.0f,
             d_o.data() + head(bt, hd), d);
      b.gemm(yes, no, C, d, S, 1.0f, dz.data() + bt * S * C, C, o.data() + head(bt, hd), d, 1.0f,
             dw_o.data() + hd * d, C);
    }
  auto dq = b.template allocate<T>(dims.q_elements()), dk = b.template allocate<T>(dims.kv_elements()),
       dv = b.template allocate<T>(dims.kv_elements());
  b.attention_backward(q.data(), k.data(), v.data(), o.data(), lse.data(), d_o.data(), dq.data(), dk.data(),
                       dv.data(), dims, settings);
  const T* dqkv[3] = {dq.data(), dk.data(), dv.data()};
  auto dh = b.template allocate<T>(N * C);
  for (std::size_t bt = 0; bt < s.batch; ++bt)
    for (std::size_t hd = 0; hd < H; ++hd)
      for (std::size_t which = 0; which < 3; ++which) {
        // dh += d{q,k,v}_h W_{q,k,v,h};  dW_{q,k,v,h} += d{q,k,v}_h^T h
        b.gemm(no, no, S, C, d, 1.0f, dqkv[which] + head(bt, hd), d, w_qkv.data() + w_rows(which, hd), C, 1.0f,
               dh.data() + bt * S * C, C);
        b.gemm(yes, no, d, C, S, 1.0f, dqkv[which] + head(bt, hd), d, h.data() + bt * S * C, C, 1.0f,
               dw_qkv.data() + w_rows(which, hd), C);
      }
  b.layernorm_backward(dh.data(), x.data(), gamma.data(), mean.data(), rstd.data(), dx.data(), dgamma.data(),
                       dbeta.data(), N, C);
  b.synchronize();

  BlockData out;
  out.z = fetch(z);
  out.y = fetch(y);
  out.dx = fetch(dx);
  out.dgamma = fetch_accum(dgamma);
  out.dbeta = fetch_accum(dbeta);
  out.dw_qkv = fetch(dw_qkv);
  out.dw_o = fetch(dw_o);
  return out;
}

// The tolerance rule of the header comment. For a gradient, `before` is its value before the
// backward: it must stand out of the tolerance, so that a backward overwriting its gradient
// instead of adding to it fails the check.
void check_rule(const char* name, const std::vector<float>& emu_out, const std::vector<float>& naive_out,
                const std::vector<float>& ref, const std::vector<float>* before = nullptr) {
  const double err = max_err(emu_out, ref), naive_err = max_err(naive_out, ref);
  const double floor_tol = ulp_bf16(max_abs(ref));
  const double tol = 2 * naive_err + floor_tol;
  if (before) CHECK(max_abs(*before) > 2 * tol);
  if (verbose())
    std::printf("%-8s max|ref| %8.3g  emulated err %9.3g  naive bf16 err %9.3g  tol %9.3g  (%.2f of tol)\n", name,
                max_abs(ref), err, naive_err, tol, err / tol);
  INFO(name, ": emulated CUDA backend error ", err, ", naive bf16-storage error ", naive_err, ", tolerance ", tol);
  CHECK(err <= tol);
}

// ---- concept checks ----

struct NoGeluBackward : rlxf::cpu::Backend<> {  // an op missing
  void gelu_backward(const float*, const float*, float*, std::size_t) const = delete;
};
struct CpuShapedAttention : rlxf::cpu::Backend<> {  // attention on the CPU kernels' own structs
  void attention_forward(const float*, const float*, const float*, float*, float*, const rlxf::cpu::AttentionShape&,
                         const rlxf::cpu::AttentionOptions&) const {}
};
struct NoSynchronize : rlxf::cpu::Backend<> {
  void synchronize() const = delete;
};
struct NoValueType {  // not a backend at all
  template <class T>
  using Buffer = std::vector<T>;
};

}  // namespace

TEST_CASE("Backend: the CPU, emulated CUDA and test backends model it, types missing an op do not") {
  static_assert(rlxf::Backend<rlxf::cpu::Backend<>>);
  static_assert(rlxf::Backend<EmuBackend>);
  static_assert(rlxf::Backend<RoundingBackend>);
  static_assert(std::is_same_v<EmuBackend::value_type, bf16>);
  static_assert(std::is_same_v<rlxf::cpu::Backend<>::value_type, float>);
  static_assert(!rlxf::Backend<NoGeluBackward>);
  static_assert(!rlxf::Backend<CpuShapedAttention>);
  static_assert(!rlxf::Backend<NoSynchronize>);
  static_assert(!rlxf::Backend<NoValueType>);
  static_assert(!rlxf::Backend<int>);
  CHECK(rlxf::cpu::Backend<>::name() == "cpu");
  CHECK(EmuBackend::name() == "cuda-emulated");
}

TEST_CASE("Backend: one pre-LN attention block (head_dim 64) on the CPU and on the emulated CUDA backend") {
  // 2 x 96 tokens, 128 channels, 2 heads of 64: ragged GEMM and attention tiles (96 = 64 +
  // 32), a causal diagonal inside a key tile and a key tile the causal mask skips.
  const BlockShape shape{2, 96, 2, 64};
  const BlockData in = random_block(shape, 20240611);

  rlxf::cpu::Backend cpu;
  const BlockData ref = run_block(cpu, shape, in);
  RoundingBackend rounding;
  const BlockData naive = run_block(rounding, shape, in);

  emu::Options natural;
  emu::Options permuted;  // seed-permuted WMMA fragment layouts, blocks in a shuffled order
  permuted.fragments = emu::FragmentLayout::permuted;
  permuted.shuffle_blocks = true;
  permuted.seed = 7;
  for (const emu::Options& options : {natural, permuted}) {
    INFO("fragment layout ", options.fragments == emu::FragmentLayout::natural ? "natural" : "permuted");
    EmuBackend gpu{emu::Device(options)};
    const BlockData out = run_block(gpu, shape, in);
    check_rule("z", out.z, naive.z, ref.z);
    check_rule("y", out.y, naive.y, ref.y);
    check_rule("dx", out.dx, naive.dx, ref.dx, &in.dx);
    check_rule("dgamma", out.dgamma, naive.dgamma, ref.dgamma, &in.dgamma);
    check_rule("dbeta", out.dbeta, naive.dbeta, ref.dbeta, &in.dbeta);
    check_rule("dw_qkv", out.dw_qkv, naive.dw_qkv, ref.dw_qkv, &in.dw_qkv);
    check_rule("dw_o", out.dw_o, naive.dw_o, ref.dw_o, &in.dw_o);
  }
}

namespace {

// Runs every backward of B twice into the same (zeroed) gradients: the second run must add
// the same amount again: g2 = 2 g1 up to the rounding of the sum, in units of one bf16 ulp of
// each element (bf16), or of eps_f32 max|2 g1| (f32: dk, dv add each q head's share to
// non-zero values the second time, which rounds differently).
template <rlxf::Backend B>
void check_backwards_add(B& b, double ulps) {
  using T = typename B::value_type;
  const std::size_t N = 24, C = 64;
  const rlxf::AttentionDims dims{1, 2, 1, 20, 40, 64, 48};  // grouped-query, a KV cache's capacity
  auto load = [&](std::size_t n, std::uint32_t seed) {
    auto buf = b.template allocate<T>(n);
    const auto host = random_bf16_floats(n, seed);
    b.upload(host, buf);
    return buf;
  };
  auto fetch = [&](const auto& buf) {  // value_type through download, accum_type (host memory here) directly
    if constexpr (std::is_same_v<typename std::decay_t<decltype(buf)>::value_type, T>) {
      std::vector<float> host(buf.size());
      b.download(buf, host);
      return host;
    } else {
      return std::vector<float>(buf.begin(), buf.end());
    }
  };
  auto twice = [&](const char* what, auto&& backward, auto&... grads) {
    backward();
    const std::vector<std::vector<float>> once{fetch(grads)...};
    backward();
    const std::vector<std::vector<float>> second{fetch(grads)...};
    for (std::size_t g = 0; g < once.size(); ++g) {
      double scale = 0, worst = 0;
      for (float v : once[g]) scale = std::max(scale, std::abs(2.0 * v));
      REQUIRE(scale > 0);
      for (std::size_t i = 0; i < once[g].size(); ++i)
        worst = std::max(worst, std::abs(double(second[g][i]) - 2.0 * once[g][i]) /
                                    (std::is_same_v<T, bf16> ? ulp_bf16(2.0 * once[g][i]) + 1e-30
                                                             : scale * std::numeric_limits<float>::epsilon()));
      if (verbose())
        std::printf("%-14s %-9s gradient %zu: |g2 - 2 g1| up to %.3g units (allowed %g)\n", B::name().data(), what,
                    g, worst, ulps);
      INFO(B::name(), " ", what, " gradient ", g, ": |g2 - 2 g1| is ", worst, " units, allowed ", ulps);
      CHECK(worst <= ulps);
    }
  };

  auto x = load(N * C, 1), gamma = load(C, 2), dy = load(N * C, 3);
  auto mean = b.template allocate<float>(N), rstd = b.template allocate<float>(N);
  auto y = b.template allocate<T>(N * C);
  b.layernorm_forward(x.data(), gamma.data(), nullptr, y.data(), mean.data(), rstd.data(), N, C, 1e-5f);
  auto dx = b.template allocate<T>(N * C);
  auto dgamma = b.template allocate<typename B::accum_type>(C), dbeta = b.template allocate<typename B::accum_type>(C);
  twice("layernorm", [&] {
    b.layernorm_backward(dy.data(), x.data(), gamma.data(), mean.data(), rstd.data(), dx.data(), dgamma.data(),
                         dbeta.data(), N, C);
  }, dx, dgamma, dbeta);

  auto gx = b.template allocate<T>(N * C);
  twice("gelu", [&] { b.gelu_backward(x.data(), dy.data(), gx.data(), N * C); }, gx);

  auto q = load(dims.q_elements(), 4), k = load(dims.kv_elements(), 5), v = load(dims.kv_elements(), 6),
       dout = load(dims.q_elements(), 7);
  auto o = b.template allocate<T>(dims.q_elements());
  auto lse = b.template allocate<float>(dims.rows());
  rlxf::AttentionSettings settings;
  settings.causal = true;
  b.attention_forward(q.data(), k.data(), v.data(), o.data(), lse.data(), dims, settings);
  auto dq = b.template allocate<T>(dims.q_elements()), dk = b.template allocate<T>(dims.kv_elements()),
       dv = b.template allocate<T>(dims.kv_elements());
  twice("attention", [&] {
    b.attention_backward(q.data(), k.data(), v.data(), o.data(), lse.data(), dout.data(), dq.data(), dk.data(),
                         dv.data(), dims, settings);
  }, dq, dk, dv);
  // Rows [kv_len, kv_capacity) of the KV cache got no gradient.
  const auto dk_host = fetch(dk);
  for (std::size_t r = dims.kv_len; r < dims.kv_stride(); ++r) CHECK(dk_host[r * dims.head_dim] == 0.0f);
}

}  // namespace

TEST_CASE("Backend: every backward adds into its gradients (CPU and emulated CUDA)") {
  rlxf::cpu::Backend cpu;
  check_backwards_add(cpu, 8);   // measured: at most 0.53
  EmuBackend gpu;
  check_backwards_add(gpu, 1);   // one rounding of round(d) + d (measured: exact)
}

TEST_CASE("Backend: arguments the CUDA kernels cannot run throw rlxf::Error before launching") {
  EmuBackend gpu;
  const rlxf::AttentionDims dims{1, 1, 1, 16, 16, 32, 0};  // head_dim 32: no kernel
  auto q = gpu.allocate<bf16>(dims.q_elements()), o = gpu.allocate<bf16>(dims.q_elements());
  auto lse = gpu.allocate<float>(dims.rows());
  CHECK_THROWS_WITH_AS(gpu.attention_forward(q.data(), q.data(), q.data(), o.data(), lse.data(), dims, {}),
                       doctest::Contains("head_dim 32"), rlxf::Error);
  CHECK_THROWS_WITH_AS(gpu.attention_backward(q.data(), q.data(), q.data(), o.data(), lse.data(), o.data(), q.data(),
                                              q.data(), q.data(), dims, {}),
                       doctest::Contains("head_dim 32"), rlxf::Error);
  std::vector<float> host(3);
  CHECK_THROWS_AS(gpu.upload(host, q), rlxf::Error);  // sizes differ
  CHECK_THROWS_AS(gpu.download(q, host), rlxf::Error);
  rlxf::cpu::Backend cpu;
  auto c = cpu.allocate<float>(4);
  CHECK_THROWS_AS(cpu.upload(host, c), rlxf::Error);
}

namespace {

// ---- the Add kernel ----

// The emulator as a launcher, remembering the kernels it ran.
struct Recorder {
  std::vector<std::type_index>* launched;
  template <class Kernel>
  void operator()(cuda::KernelTag<Kernel>, const cuda::LaunchConfig& config, const typename Kernel::Params& p) const {
    launched->push_back(typeid(Kernel));
    emu::launch<Kernel>(config, p, emu::Options{});
  }
};

template <class T>
T stored_as(float v) {
  return cuda::from_float<T>(v);
}

// y += x for n elements at element offsets (x_at, y_at) of aligned arrays: bit-identical to
// the f32 sum rounded once to TY, through the 128-bit variant when both offsets keep 16-byte
// alignment and the scalar one otherwise.
template <class TX, class TY>
void check_add(std::size_t n, std::size_t x_at, std::size_t y_at, bool same_array = false) {
  const auto xs = random_bf16_floats(n + x_at, 11), ys = random_bf16_floats(n + y_at, 12);
  std::vector<TX, rlxf::AlignedAllocator<TX>> x(xs.size());
  std::vector<TY, rlxf::AlignedAllocator<TY>> y(ys.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = stored_as<TX>(xs[i] * 3.0f);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = stored_as<TY>(ys[i]);
  std::vector<TY> expected(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float xv = same_array ? cuda::to_float(y[y_at + i]) : cuda::to_float(x[x_at + i]);
    expected[i] = stored_as<TY>(cuda::to_float(y[y_at + i]) + xv);
  }
  std::vector<std::type_index> launched;
  const TX* xp;
  if constexpr (std::is_same_v<TX, TY>) xp = same_array ? y.data() + y_at : x.data() + x_at;
  else xp = x.data() + x_at;
  cuda::add(cuda::AddParams<TX, TY>{xp, y.data() + y_at, static_cast<long long>(n)}, Recorder{&launched});
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) bad += std::memcmp(&expected[i], &y[y_at + i], sizeof(TY)) != 0;
  INFO("n = ", n, ", offsets ", x_at, ", ", y_at);
  CHECK(bad == 0);
  const bool vector = (x_at * sizeof(TX)) % 16 == 0 && (y_at * sizeof(TY)) % 16 == 0;
  REQUIRE(launched.size() == (n == 0 ? 0u : 1u));
  if (n != 0) {
    constexpr int V = cuda::add_vec<TX, TY>;
    CHECK(launched[0] == (vector ? std::type_index(typeid(cuda::Add<TX, TY, V>)) : std::type_index(typeid(cuda::Add<TX, TY, 1>))));
  }
}

template <class TX, class TY>
void check_add_cases() {
  check_add<TX, TY>(4096, 0, 0);  // 128-bit chunks only
  check_add<TX, TY>(1003, 0, 0);  // and a scalar tail
  check_add<TX, TY>(997, 1, 0);   // misaligned x: scalars
  check_add<TX, TY>(997, 0, 3);   // misaligned y
  check_add<TX, TY>(0, 0, 0);     // nothing to do, nothing launched
}

}  // namespace

TEST_CASE("Add kernel (y += x, f32 / bf16 each) is exact under the emulator, vectorised and scalar") {
  check_add_cases<float, float>();
  check_add_cases<rlxf::bf16, rlxf::bf16>();
  check_add_cases<float, rlxf::bf16>();
  check_add_cases<rlxf::bf16, float>();
  check_add<rlxf::bf16, rlxf::bf16>(1003, 0, 0, true);  // y += y
  check_add<float, float>(77, 5, 5, true);
  std::vector<std::type_index> launched;
  CHECK_THROWS_AS(cuda::add(cuda::AddParams<float, float>{nullptr, nullptr, 5}, Recorder{&launched}), rlxf::Error);
  CHECK(launched.empty());
}
