// The TrainingBackend concept (rlxf/concepts.hpp), op by op, on its three host-runnable
// models: cpu::Backend<float>, cpu::Backend<double> and cuda::Backend<cuda::emulate::Device>
// (the CUDA kernels, bf16 storage, run by the CPU emulator). Each op runs once, written once
// against the concept, on the same inputs (bf16-representable, so every model reads the same
// numbers); cpu::Backend<double> is the reference. Tolerances, by rule:
//   cpu::Backend<float>   f32 arithmetic: |z - ref| <= 1e-5 max|ref| (2^-17: f32 rounding of
//                         sums of a few hundred terms, with a wide margin);
//   emulated CUDA         a value_type (bf16) output is rounded once at its store:
//                         |z - ref| <= ulp_bf16(max|ref|) (twice the half-ulp bound);
//                         an accum_type (f32) output, which never passes through bf16:
//                         |z - ref| <= 1e-4 (1 + max|ref|), 30 times below one bf16 rounding, so
//                         an op that rounds its result to bf16 fails.
// Exact ops (copies, head permutations, casts, sums of squares of bf16 numbers in double) are
// compared exactly, and the reductions that must be deterministic are run twice.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "rlxf/concepts.hpp"
#include "rlxf/core/backend.hpp"
#include "rlxf/core/dtype.hpp"
#include "rlxf/cpu/backend.hpp"
#include "rlxf/cuda/emulate/device.hpp"
#include "rlxf/optim/adamw.hpp"
#include "bf16_check.hpp"

namespace {

using rlxf::bf16;
using rlxf::Transpose;
using EmuBackend = rlxf::cuda::Backend<rlxf::cuda::emulate::Device>;
using Ref = rlxf::cpu::Backend<double>;
using rlxf::test::random_bf16_floats;
using rlxf::test::round_bf16;
using rlxf::test::ulp_bf16;

// ---- moving host data in and out, written once against the concept ----

template <class B>
auto put(B& b, const std::vector<float>& host) {  // value_type
  auto buf = b.template allocate<typename B::value_type>(host.size());
  b.upload(host, buf);
  return buf;
}
template <class B>
auto put_accum(B& b, const std::vector<float>& host) {
  using A = typename B::accum_type;
  const std::vector<A> staged(host.begin(), host.end());
  auto buf = b.template allocate<A>(host.size());
  b.copy_to_device(std::span<const A>(staged), buf.data());
  return buf;
}
template <class B>
auto put_ids(B& b, const std::vector<std::int32_t>& host) {
  auto buf = b.template allocate<std::int32_t>(host.size());
  b.copy_to_device(std::span<const std::int32_t>(host), buf.data());
  return buf;
}
// Any buffer back as doubles: bf16 through download, float and double exactly.
template <class B, class Buf>
std::vector<double> get(B& b, const Buf& buf) {
  using E = std::remove_cvref_t<decltype(*buf.data())>;
  if constexpr (std::is_same_v<E, bf16>) {
    std::vector<float> host(buf.size());
    b.download(buf, host);
    return {host.begin(), host.end()};
  } else {
    std::vector<E> host(buf.size());
    b.copy_to_host(buf.data(), std::span<E>(host));
    return {host.begin(), host.end()};
  }
}

using Outputs = std::map<std::string, std::vector<double>>;

enum class Kind { value, accum, exact };

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

template <class B>
void compare(const Outputs& got, const Outputs& ref, const std::map<std::string, Kind>& kinds) {
  constexpr bool bf16_storage = std::is_same_v<typename B::value_type, bf16>;
  for (const auto& [name, r] : ref) {
    const std::vector<double>& z = got.at(name);
    REQUIRE(z.size() == r.size());
    const Kind kind = kinds.at(name);
    const double scale = max_abs(r);
    double err = 0;
    for (std::size_t i = 0; i < r.size(); ++i) err = std::max(err, std::abs(z[i] - r[i]));
    double tol = 0;
    if (kind != Kind::exact) {
      if (!bf16_storage) tol = 1e-5 * scale;
      else tol = kind == Kind::value ? ulp_bf16(scale) : 1e-4 * (1 + scale);
    }
    INFO(B::name(), " ", name, ": max error ", err, ", tolerance ", tol, ", max|ref| ", scale);
    CHECK(scale > 0);
    CHECK(err <= tol);
  }
}

// ---- the ops, written once ----

struct Sizes {
  std::size_t rows = 24, dim = 40, vocab = 300, batch = 2, len = 7, heads = 3, head_dim = 8;
};

template <class B>
Outputs run_gemms(B& b, const Sizes& s) {
  const std::size_t M = s.rows, N = s.dim, K = 56;
  const auto a = random_bf16_floats(M * K, 1), w = random_bf16_floats(N * K, 2, 0.2f), bias = random_bf16_floats(N, 3);
  auto A = put(b, a), W = put(b, w);
  auto bias_buf = put_accum(b, bias);
  Outputs out;
  auto y = b.template allocate<typename B::value_type>(M * N);
  b.gemm_epilogue(Transpose::no, Transpose::yes, M, N, K, 1.0f, A.data(), K, W.data(), K, 0.0f, y.data(), N,
                  bias_buf.data(), rlxf::GemmEpilogue::gelu_tanh);
  out["linear_gelu"] = get(b, y);
  b.gemm_epilogue(Transpose::no, Transpose::yes, M, N, K, 0.5f, A.data(), K, W.data(), K, 0.0f, y.data(), N,
                  bias_buf.data(), rlxf::GemmEpilogue::none);
  out["linear_bias"] = get(b, y);
  // Weight gradient: dW (N, K) += dy^T x in accum_type, on top of what it held.
  const auto dy = random_bf16_floats(M * N, 4);
  auto DY = put(b, dy);
  auto dW = put_accum(b, random_bf16_floats(N * K, 5, 3.0f));
  b.gemm_accumulate(Transpose::yes, Transpose::no, N, K, M, 1.0f, DY.data(), N, A.data(), K, dW.data(), K);
  out["weight_grad"] = get(b, dW);
  // Batched: 3 independent (M/3, N) = (M/3, K) (K, N) products, B stored (N, K) per batch.
  const std::size_t m = M / 3;
  const auto wb = random_bf16_floats(3 * N * K, 6, 0.2f);
  auto WB = put(b, wb);
  auto C = b.template allocate<typename B::value_type>(3 * m * N);
  b.gemm_batched(Transpose::no, Transpose::yes, m, N, K, 1.0f, A.data(), K, m * K, WB.data(), K, N * K, 0.0f,
                 C.data(), N, m * N, 3);
  out["batched"] = get(b, C);
  return out;
}

template <class B>
Outputs run_embeddings(B& b, const Sizes& s) {
  const std::size_t rows = 11;
  const auto table = random_bf16_floats(rows * s.dim, 7), pos_table = random_bf16_floats(rows * s.dim, 8);
  std::vector<std::int32_t> ids(s.rows), pos(s.rows);
  for (std::size_t i = 0; i < s.rows; ++i) {
    ids[i] = static_cast<std::int32_t>((i * 7) % 5);  // ids repeat: their gradients add up
    pos[i] = static_cast<std::int32_t>(i % rows);
  }
  auto T = put(b, table), P = put(b, pos_table);
  auto I = put_ids(b, ids), Q = put_ids(b, pos);
  auto x = b.template allocate<typename B::value_type>(s.rows * s.dim);
  b.embedding_forward(I.data(), T.data(), x.data(), s.rows, s.dim, false);
  b.embedding_forward(Q.data(), P.data(), x.data(), s.rows, s.dim, true);
  Outputs out;
  out["embed"] = get(b, x);
  auto dout = put(b, random_bf16_floats(s.rows * s.dim, 9));
  auto dtable = put_accum(b, random_bf16_floats(rows * s.dim, 10));
  b.embedding_backward(I.data(), dout.data(), dtable.data(), s.rows, s.dim);
  out["embed_grad"] = get(b, dtable);
  auto dbias = put_accum(b, random_bf16_floats(s.dim, 11));
  b.bias_backward(dout.data(), dbias.data(), s.rows, s.dim);
  out["bias_grad"] = get(b, dbias);
  return out;
}

template <class B>
Outputs run_elementwise(B& b, const Sizes& s) {
  const std::size_t n = s.rows * s.dim;
  using V = typename B::value_type;
  const auto x = random_bf16_floats(n, 12), y0 = random_bf16_floats(n, 13), gate = random_bf16_floats(n, 14, 2.0f);
  auto X = put(b, x), G = put(b, gate);
  Outputs out;
  auto Y = put(b, y0);
  b.add(X.data(), Y.data(), n);
  out["add"] = get(b, Y);
  for (const rlxf::GeluForm form : {rlxf::GeluForm::tanh, rlxf::GeluForm::exact}) {
    const std::string tag = form == rlxf::GeluForm::tanh ? "gelu_tanh" : "gelu_exact";
    auto act = b.template allocate<V>(n);
    b.gelu_forward(G.data(), act.data(), n, form);
    out[tag] = get(b, act);
    auto dg = put(b, y0);
    b.gelu_backward(G.data(), X.data(), dg.data(), n, form);
    out[tag + "_grad"] = get(b, dg);
  }
  auto sw = b.template allocate<V>(n);
  b.swiglu_forward(G.data(), X.data(), sw.data(), n);
  out["swiglu"] = get(b, sw);
  auto dgate = put(b, y0), dup = put(b, x);
  auto dy = put(b, random_bf16_floats(n, 15));
  b.swiglu_backward(G.data(), X.data(), dy.data(), dgate.data(), dup.data(), n);
  out["swiglu_dgate"] = get(b, dgate);
  out["swiglu_dup"] = get(b, dup);
  auto th = b.template allocate<V>(n);
  b.tanh_forward(G.data(), th.data(), n);
  out["tanh"] = get(b, th);
  std::vector<float> tanh_out(n);  // the forward's output as every backend reads it
  for (std::size_t i = 0; i < n; ++i) tanh_out[i] = round_bf16(std::tanh(gate[i]));
  auto TY = put(b, tanh_out), dtanh = put(b, y0);
  b.tanh_backward(TY.data(), dy.data(), dtanh.data(), n);
  out["tanh_grad"] = get(b, dtanh);
  // Norms over (rows, dim), rows with their own offsets; gamma around 1.
  const auto xs = random_bf16_floats(n, 16, 1.5f, 0.7f);
  auto XS = put(b, xs), gamma = put(b, random_bf16_floats(s.dim, 17, 0.2f, 1.0f)), beta = put(b, random_bf16_floats(s.dim, 18));
  auto ln = b.template allocate<V>(n);
  auto mean = b.template allocate<typename B::accum_type>(s.rows), rstd = b.template allocate<typename B::accum_type>(s.rows);
  b.layernorm_forward(XS.data(), gamma.data(), beta.data(), ln.data(), mean.data(), rstd.data(), s.rows, s.dim, 1e-5f);
  out["layernorm"] = get(b, ln);
  auto dx = put(b, y0);
  auto dgamma = put_accum(b, random_bf16_floats(s.dim, 19)), dbeta = put_accum(b, random_bf16_floats(s.dim, 20));
  b.layernorm_backward(dy.data(), XS.data(), gamma.data(), mean.data(), rstd.data(), dx.data(), dgamma.data(),
                       dbeta.data(), s.rows, s.dim);
  out["layernorm_dx"] = get(b, dx);
  out["layernorm_dgamma"] = get(b, dgamma);
  out["layernorm_dbeta"] = get(b, dbeta);
  auto rms = b.template allocate<V>(n);
  b.rmsnorm_forward(XS.data(), gamma.data(), rms.data(), rstd.data(), s.rows, s.dim, 1e-6f);
  out["rmsnorm"] = get(b, rms);
  auto rdx = put(b, y0);
  auto rdgamma = put_accum(b, random_bf16_floats(s.dim, 21));
  b.rmsnorm_backward(dy.data(), XS.data(), gamma.data(), rstd.data(), rdx.data(), rdgamma.data(), s.rows, s.dim);
  out["rmsnorm_dx"] = get(b, rdx);
  out["rmsnorm_dgamma"] = get(b, rdgamma);
  // RoPE on (tokens, heads, head_dim) at positions up to 500, forward then its inverse.
  const std::size_t tokens = s.batch * s.len, hd = s.heads * s.head_dim;
  std::vector<std::int32_t> positions(tokens);
  for (std::size_t i = 0; i < tokens; ++i) positions[i] = static_cast<std::int32_t>((i * 37) % 500);
  auto P = put_ids(b, positions);
  auto R = put(b, random_bf16_floats(tokens * hd, 22));
  b.rope(R.data(), P.data(), tokens, s.heads, s.head_dim, 10000.0, 512, false);
  out["rope"] = get(b, R);
  auto RB = put(b, random_bf16_floats(tokens * hd, 23));
  b.rope(RB.data(), P.data(), tokens, s.heads, s.head_dim, 10000.0, 512, true);
  out["rope_inverse"] = get(b, RB);
  return out;
}

template <class B>
Outputs run_logprobs(B& b, const Sizes& s, double temperature) {
  const std::size_t rows = s.rows, V = s.vocab;
  const auto logits = random_bf16_floats(rows * V, 24, 3.0f);
  std::vector<std::int32_t> targets(rows);
  for (std::size_t i = 0; i < rows; ++i)
    targets[i] = i % 5 == 3 ? rlxf::ignore_target : static_cast<std::int32_t>((i * 53) % V);
  auto L = put(b, logits);
  auto T = put_ids(b, targets);
  using A = typename B::accum_type;
  auto logp = b.template allocate<A>(rows), lse = b.template allocate<A>(rows), entropy = b.template allocate<A>(rows);
  b.token_logprobs(L.data(), T.data(), logp.data(), lse.data(), entropy.data(), rows, V, temperature);
  Outputs out;
  out["logp"] = get(b, logp);
  out["lse"] = get(b, lse);
  out["entropy"] = get(b, entropy);
  auto dlogp = put_accum(b, random_bf16_floats(rows, 25));
  auto dlogits = put(b, random_bf16_floats(rows * V, 26, 0.01f));
  b.token_logprobs_backward(L.data(), T.data(), lse.data(), dlogp.data(), dlogits.data(), rows, V, temperature);
  out["dlogits"] = get(b, dlogits);
  return out;
}

template <class B>
Outputs run_adamw(B& b, std::size_t n) {
  auto p = put_accum(b, random_bf16_floats(n, 27)), g = put_accum(b, random_bf16_floats(n, 28, 0.1f));
  auto m = put_accum(b, std::vector<float>(n, 0.0f)), v = put_accum(b, std::vector<float>(n, 0.0f));
  rlxf::AdamWStep step{.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
  for (int t = 1; t <= 3; ++t) {
    step.correction1 = 1 - std::pow(step.beta1, t);
    step.correction2 = 1 - std::pow(step.beta2, t);
    b.adamw(p.data(), g.data(), m.data(), v.data(), n, step);
  }
  return {{"param", get(b, p)}, {"m", get(b, m)}, {"v", get(b, v)}};
}

template <class B>
void check_against_reference(B& b) {
  Ref ref;
  const Sizes s;
  SUBCASE("GEMMs: bias and GELU epilogues, f32 weight-gradient accumulation, strided batches") {
    compare<B>(run_gemms(b, s), run_gemms(ref, s),
               {{"linear_gelu", Kind::value}, {"linear_bias", Kind::value}, {"weight_grad", Kind::accum},
                {"batched", Kind::value}});
  }
  SUBCASE("embedding gather (added to a second), deterministic scatter-add, bias gradient") {
    compare<B>(run_embeddings(b, s), run_embeddings(ref, s),
               {{"embed", Kind::value}, {"embed_grad", Kind::accum}, {"bias_grad", Kind::accum}});
  }
  SUBCASE("residual add, GELU (both forms), SwiGLU, tanh, LayerNorm, RMSNorm, RoPE, forward and backward") {
    std::map<std::string, Kind> kinds;
    for (const char* k : {"add", "gelu_tanh", "gelu_tanh_grad", "gelu_exact", "gelu_exact_grad", "swiglu",
                          "swiglu_dgate", "swiglu_dup", "tanh", "tanh_grad", "layernorm", "layernorm_dx", "rmsnorm", "rmsnorm_dx", "rope",
                          "rope_inverse"})
      kinds[k] = Kind::value;
    for (const char* k : {"layernorm_dgamma", "layernorm_dbeta", "rmsnorm_dgamma"}) kinds[k] = Kind::accum;
    compare<B>(run_elementwise(b, s), run_elementwise(ref, s), kinds);
  }
  SUBCASE("token log-probs, log-sum-exp and entropy at temperatures 1 and 0.7, and their gradient") {
    for (const double temperature : {1.0, 0.7}) {
      INFO("temperature ", temperature);
      compare<B>(run_logprobs(b, s, temperature), run_logprobs(ref, s, temperature),
                 {{"logp", Kind::accum}, {"lse", Kind::accum}, {"entropy", Kind::accum}, {"dlogits", Kind::value}});
    }
  }
  SUBCASE("AdamW: three steps with weight decay") {
    compare<B>(run_adamw(b, 1000), run_adamw(ref, 1000), {{"param", Kind::accum}, {"m", Kind::accum}, {"v", Kind::accum}});
  }
}

// Exact ops: head split into a KV cache's rows and merge back, casts, copies, zero, scale,
// and the sum of squares (bf16 numbers square exactly in double), twice for determinism.
template <class B>
void check_exact_ops(B& b) {
  using V = typename B::value_type;
  using A = typename B::accum_type;
  const std::size_t batch = 2, len = 5, heads = 3, d = 8, capacity = 9, offset = 3;
  const auto x = random_bf16_floats(batch * len * heads * d, 30);
  auto X = put(b, x);
  auto cache = b.template allocate<V>(batch * heads * capacity * d);
  b.split_heads(X.data(), cache.data(), batch, len, heads, d, capacity, offset);
  const auto cached = get(b, cache);
  for (std::size_t bi = 0; bi < batch; ++bi)
    for (std::size_t t = 0; t < len; ++t)
      for (std::size_t h = 0; h < heads; ++h)
        for (std::size_t k = 0; k < d; ++k)
          REQUIRE(cached[((bi * heads + h) * capacity + offset + t) * d + k] ==
                  x[((bi * len + t) * heads + h) * d + k]);
  CHECK(cached[0] == 0.0);  // rows before the offset untouched
  auto heads_major = b.template allocate<V>(x.size()), back = b.template allocate<V>(x.size());
  b.split_heads(X.data(), heads_major.data(), batch, len, heads, d, len, 0);
  b.merge_heads(heads_major.data(), back.data(), batch, len, heads, d);
  CHECK(get(b, back) == std::vector<double>(x.begin(), x.end()));

  // casts: accum -> value rounds to nearest even (as bf16::from_float on bf16 storage)
  std::vector<float> fine(64);
  for (std::size_t i = 0; i < fine.size(); ++i) fine[i] = 1.0f + static_cast<float>(i) * 0.00137f;
  auto F = put_accum(b, fine);
  auto as_value = b.template allocate<V>(fine.size());
  b.template cast<A, V>(F.data(), as_value.data(), fine.size());
  const auto rounded = get(b, as_value);
  for (std::size_t i = 0; i < fine.size(); ++i) {
    const double expected = std::is_same_v<V, bf16> ? double(round_bf16(fine[i])) : double(fine[i]);
    REQUIRE(rounded[i] == expected);
  }
  auto as_accum = b.template allocate<A>(fine.size());
  b.template cast<V, A>(as_value.data(), as_accum.data(), fine.size());
  CHECK(get(b, as_accum) == rounded);
  auto copied = b.template allocate<A>(fine.size());
  b.copy(as_accum.data(), copied.data(), fine.size());
  b.scale(copied.data(), fine.size(), 0.5);
  const auto halved = get(b, copied);
  for (std::size_t i = 0; i < fine.size(); ++i) REQUIRE(halved[i] == rounded[i] / 2);
  b.zero(copied.data(), 10);
  CHECK(get(b, copied)[9] == 0.0);
  // sub-range transfer
  const std::vector<std::int32_t> tail{4, 5, 6};
  auto ints = b.template allocate<std::int32_t>(8);
  b.copy_to_device(std::span<const std::int32_t>(tail), ints.data() + 5);
  std::vector<std::int32_t> back_ints(4);
  b.copy_to_host(ints.data() + 4, std::span<std::int32_t>(back_ints));
  CHECK(back_ints == std::vector<std::int32_t>{0, 4, 5, 6});

  const std::size_t n = 70001;  // several blocks and a ragged end
  const auto big = random_bf16_floats(n, 31, 3.0f);
  auto BIG = put_accum(b, big);
  double exact = 0;
  for (float v : big) exact += double(v) * double(v);
  const double first = b.sum_of_squares(BIG.data(), n), second = b.sum_of_squares(BIG.data(), n);
  CHECK(first == second);
  CHECK(std::abs(first - exact) <= 1e-12 * exact);
}

struct NoRope : rlxf::cpu::Backend<float> {  // an op missing
  void rope(float*, const std::int32_t*, std::size_t, std::size_t, std::size_t, double, std::size_t, bool) const = delete;
};
struct NoSumOfSquares : rlxf::cpu::Backend<float> {
  double sum_of_squares(const float*, std::size_t) const = delete;
};

}  // namespace

TEST_CASE("TrainingBackend: both CPU backends and both CUDA devices model it, types missing an op do not") {
  static_assert(rlxf::TrainingBackend<rlxf::cpu::Backend<float>>);
  static_assert(rlxf::TrainingBackend<rlxf::cpu::Backend<double>>);
  static_assert(rlxf::TrainingBackend<EmuBackend>);
  static_assert(std::is_same_v<EmuBackend::value_type, bf16> && std::is_same_v<EmuBackend::accum_type, float>);
  static_assert(std::is_same_v<Ref::value_type, double> && std::is_same_v<Ref::accum_type, double>);
  static_assert(rlxf::Backend<NoRope> && !rlxf::TrainingBackend<NoRope>);
  static_assert(!rlxf::TrainingBackend<NoSumOfSquares>);
  CHECK(rlxf::cpu::Backend<double>::name() == "cpu");
}

TEST_CASE("TrainingBackend ops: cpu::Backend<float> against cpu::Backend<double>") {
  rlxf::cpu::Backend<float> b;
  check_against_reference(b);
}

TEST_CASE("backend parity: TrainingBackend ops on the emulated CUDA backend against cpu::Backend<double>") {
  EmuBackend b;
  check_against_reference(b);
}

TEST_CASE("TrainingBackend: exact ops (heads, casts, copies, scale, sum of squares) on every model") {
  rlxf::cpu::Backend<float> f;
  check_exact_ops(f);
  Ref d;
  check_exact_ops(d);
  EmuBackend e;
  check_exact_ops(e);
}

TEST_CASE("TrainingBackend: cpu::Backend<float>'s AdamW is optim::AdamW's, bit for bit") {
  const std::size_t n = 300;
  const auto init = random_bf16_floats(n, 40), grads = random_bf16_floats(n, 41, 0.3f);
  rlxf::Parameter<float> param({n});
  std::copy(init.begin(), init.end(), param.value.data());
  rlxf::ParameterList<float> list{{"w", &param}};
  const rlxf::optim::AdamWConfig cfg{.lr = 3e-3, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0.05};
  rlxf::optim::AdamW<float> opt(list, cfg);
  rlxf::cpu::Backend<float> b;
  std::vector<float> p = init, m(n, 0.0f), v(n, 0.0f);
  for (int t = 1; t <= 4; ++t) {
    std::copy(grads.begin(), grads.end(), param.grad.data());
    opt.step();
    const rlxf::AdamWStep step{.lr = cfg.lr, .beta1 = cfg.beta1, .beta2 = cfg.beta2, .eps = cfg.eps,
                               .weight_decay = cfg.weight_decay, .correction1 = 1 - std::pow(cfg.beta1, t),
                               .correction2 = 1 - std::pow(cfg.beta2, t)};
    b.adamw(p.data(), grads.data(), m.data(), v.data(), n, step);
  }
  for (std::size_t i = 0; i < n; ++i) REQUIRE(p[i] == param.value.data()[i]);
  // decayed = k: the first k elements take the weight decay, the rest none, as two calls do.
  const std::size_t k = 123;
  std::vector<float> p1 = init, m1(n, 0.0f), v1(n, 0.0f), p2 = init, m2(n, 0.0f), v2(n, 0.0f);
  rlxf::AdamWStep step{.lr = cfg.lr, .weight_decay = 0.5, .correction1 = 0.1, .correction2 = 0.01, .decayed = k};
  b.adamw(p1.data(), grads.data(), m1.data(), v1.data(), n, step);
  step.decayed = SIZE_MAX;
  b.adamw(p2.data(), grads.data(), m2.data(), v2.data(), k, step);
  step.weight_decay = 0;
  b.adamw(p2.data() + k, grads.data() + k, m2.data() + k, v2.data() + k, n - k, step);
  CHECK(p1 == p2);
  std::vector<float> p3 = init, m3(n, 0.0f), v3(n, 0.0f);  // no decay anywhere
  b.adamw(p3.data(), grads.data(), m3.data(), v3.data(), n, step);
  CHECK(p1[0] != p3[0]);  // the decay shows in the first k
  CHECK(p1[k] == p3[k]);  // and not after them
}

TEST_CASE("TrainingBackend: bad arguments throw rlxf::Error before anything runs") {
  rlxf::cpu::Backend<float> cpu;
  std::vector<float> x(8 * 4, 1.0f);
  const std::vector<std::int32_t> positions{0, 1, 7, 2};
  CHECK_THROWS_WITH_AS(cpu.rope(x.data(), positions.data(), 4, 2, 4, 10000.0, 7, false),
                       doctest::Contains("position 7, outside [0, 7)"), rlxf::Error);
  std::vector<float> logits(6, 0.0f), out(2);
  const std::vector<std::int32_t> bad_target{1, 3};
  CHECK_THROWS_WITH_AS(
      cpu.token_logprobs(logits.data(), bad_target.data(), out.data(), out.data(), nullptr, 2, 3, 1.0),
      doctest::Contains("row 1 has target 3"), rlxf::Error);
  CHECK_THROWS_AS(cpu.token_logprobs(logits.data(), positions.data(), out.data(), out.data(), nullptr, 2, 3, 0.0),
                  rlxf::Error);
  EmuBackend emu;
  auto q = emu.allocate<bf16>(16), k = emu.allocate<bf16>(16);
  CHECK_THROWS_WITH_AS(emu.split_heads(q.data(), k.data(), 1, 4, 1, 4, 3, 0), doctest::Contains("capacity 3"),
                       rlxf::Error);
  auto f = emu.allocate<float>(4);
  CHECK_THROWS_AS(emu.token_logprobs(q.data(), nullptr, f.data(), f.data(), nullptr, 2, 8, -1.0), rlxf::Error);
}
