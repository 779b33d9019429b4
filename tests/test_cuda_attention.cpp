// The fused attention kernels (rlxf/cuda/attention/) run under the CPU emulator, against
// cpu::attention_forward / attention_backward in double on the same f16/bf16-rounded inputs.
//
// Tolerance, by rule (FlashAttention's): for every output (o, lse, dq, dk, dv) the kernel's
// max abs error against the f64 reference is at most 2x the error of a naive attention in
// the same precision (S, P, O, dP, dS, dQ, dK, dV each rounded to the input type, f32
// accumulation and softmax; see naive_attention) plus a floor of 1e-5 (for outputs whose
// naive error is 0, e.g. all-zero rows).
//
// Every shipped configuration (forward and backward, head dims 64 and 128) runs in f16 and
// bf16 under both WMMA fragment layouts (natural and seed-permuted) on shapes covering:
// causal and not, ragged q_len / kv_len (1, 17, 70, 130; q_len < kv_len and q_len > kv_len,
// where the bottom-right-aligned causal mask hides every key from the first rows), a key
// padding mask (including a batch row with every key masked: o = 0, lse = +inf), grouped-
// query heads (4 q heads on 2 kv heads) and a KV cache's kv_capacity > kv_len.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "rlxf/cpu/attention.hpp"
#include "rlxf/cuda/attention/attention.hpp"
#include "rlxf/cuda/emulate/launch.hpp"

namespace {

using rlxf::bf16;
using rlxf::f16;
namespace cuda = rlxf::cuda;
namespace attn = rlxf::cuda::attention;
namespace emulate = rlxf::cuda::emulate;

constexpr double inf = std::numeric_limits<double>::infinity();

// 64-byte aligned storage (the kernels move 128-bit vectors).
template <class T>
struct Aligned {
  using value_type = T;
  Aligned() = default;
  template <class U>
  explicit Aligned(const Aligned<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})); }
  void deallocate(T* p, std::size_t n) { ::operator delete(p, n * sizeof(T), std::align_val_t{64}); }
  friend bool operator==(const Aligned&, const Aligned&) { return true; }
};
template <class T>
using Buffer = std::vector<T, Aligned<T>>;

// Runs each kernel of a launch sequence under the emulator.
using EmulatedLaunch = emulate::Launcher;

template <class T>
float round_to(float x) {
  return T::from_float(x).to_float();
}

struct Case {
  const char* name;
  int batch, q_heads, kv_heads, q_len, kv_len, kv_capacity;
  bool causal;
  int mask;  // 0: none; 1: scattered padding in batch 0, tail padding in batch 1; 2: batch 1 fully masked
};

// The problem's tensors, as the kernels store them (T) and as the references read them.
template <class T>
struct Problem {
  Case c;
  int d;
  rlxf::cpu::AttentionShape shape;
  std::size_t q_size, kv_size;
  Buffer<T> q, k, v, dout;
  std::vector<std::uint8_t> mask;  // (batch, kv_stride)

  int kv_stride() const { return c.kv_capacity ? c.kv_capacity : c.kv_len; }
  const std::uint8_t* mask_ptr() const { return c.mask ? mask.data() : nullptr; }

  Problem(const Case& cs, int head_dim, std::uint64_t seed) : c(cs), d(head_dim) {
    shape = {std::size_t(c.batch), std::size_t(c.q_heads), std::size_t(c.kv_heads), std::size_t(c.q_len),
             std::size_t(c.kv_len), std::size_t(d), std::size_t(c.kv_capacity)};
    q_size = std::size_t(c.batch) * c.q_heads * c.q_len * d;
    kv_size = std::size_t(c.batch) * c.kv_heads * kv_stride() * d;
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto fill = [&](Buffer<T>& x, std::size_t n) {
      x.resize(n);
      for (auto& e : x) e = T::from_float(normal(rng));
    };
    fill(q, q_size);
    fill(k, kv_size);
    fill(v, kv_size);
    fill(dout, q_size);
    mask.assign(std::size_t(c.batch) * kv_stride(), 1);
    if (c.mask == 1) {
      for (int j = 0; j < c.kv_len; ++j) mask[j] = (j % 7 == 3) ? 0 : 1;
      if (c.batch > 1)
        for (int j = c.kv_len * 3 / 4; j < c.kv_len; ++j) mask[std::size_t(kv_stride()) + j] = 0;
    } else if (c.mask == 2 && c.batch > 1) {
      for (int j = 0; j < kv_stride(); ++j) mask[std::size_t(kv_stride()) + j] = 0;
    }
  }

  double scale() const { return 1.0 / std::sqrt(double(d)); }
  bool hidden(int b, int i, int j) const {
    if (c.mask && mask[std::size_t(b) * kv_stride() + j] == 0) return true;
    return c.causal && j > i + c.kv_len - c.q_len;
  }
};

// Forward and backward outputs, in double.
struct Outputs {
  std::vector<double> o, lse, dq, dk, dv;
};

template <class T>
std::vector<double> widen(const Buffer<T>& x) {
  std::vector<double> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = x[i].to_float();
  return out;
}

// The f64 reference: cpu::attention_* in double on the rounded inputs.
template <class T>
Outputs reference(const Problem<T>& pb) {
  const auto q = widen(pb.q), k = widen(pb.k), v = widen(pb.v), dout = widen(pb.dout);
  rlxf::cpu::AttentionOptions opt;
  opt.causal = pb.c.causal;
  opt.key_mask = pb.mask_ptr();
  Outputs r;
  r.o.assign(pb.q_size, 0.0);
  r.lse.assign(pb.q_size / pb.d, 0.0);
  r.dq.assign(pb.q_size, 0.0);
  r.dk.assign(pb.kv_size, 0.0);
  r.dv.assign(pb.kv_size, 0.0);
  rlxf::cpu::attention_forward(q.data(), k.data(), v.data(), r.o.data(), r.lse.data(), pb.shape, opt);
  rlxf::cpu::attention_backward(q.data(), k.data(), v.data(), r.o.data(), r.lse.data(), dout.data(), r.dq.data(),
                                r.dk.data(), r.dv.data(), pb.shape, opt);
  return r;
}

// The baseline: a naive attention in T. S = round(scale q.k) (f32 dot), P = round(softmax(S))
// (f32), O = round(P V), lse in f32 from the rounded S; backward dP = round(dO V^T),
// dS = round(P (dP - rowsum(P dP))), dV = round(P^T dO), dK = round(scale dS^T Q),
// dQ = round(scale dS K), products accumulated in f32 (dK, dV also over the q heads of a
// kv head's group).
template <class T>
Outputs naive_attention(const Problem<T>& pb) {
  const Case& c = pb.c;
  const int d = pb.d, ks = pb.kv_stride(), group = c.q_heads / c.kv_heads;
  const float scale = float(pb.scale());
  auto at = [&](const Buffer<T>& x, std::size_t i) { return x[i].to_float(); };
  Outputs r;
  r.o.assign(pb.q_size, 0.0);
  r.lse.assign(pb.q_size / d, 0.0);
  r.dq.assign(pb.q_size, 0.0);
  r.dk.assign(pb.kv_size, 0.0);
  r.dv.assign(pb.kv_size, 0.0);
  std::vector<float> dk32(pb.kv_size, 0.0f), dv32(pb.kv_size, 0.0f);
  std::vector<float> p(c.kv_len), dp(c.kv_len), ds(c.kv_len);
  for (int b = 0; b < c.batch; ++b)
    for (int h = 0; h < c.q_heads; ++h) {
      const std::size_t qh = (std::size_t(b) * c.q_heads + h) * c.q_len;
      const std::size_t kh = (std::size_t(b) * c.kv_heads + h / group) * ks;
      for (int i = 0; i < c.q_len; ++i) {
        const std::size_t qi = (qh + i) * d;
        float m = -std::numeric_limits<float>::infinity();
        for (int j = 0; j < c.kv_len; ++j) {
          if (pb.hidden(b, i, j)) {
            p[j] = -std::numeric_limits<float>::infinity();
            continue;
          }
          float s = 0.0f;
          for (int e = 0; e < d; ++e) s += at(pb.q, qi + e) * at(pb.k, (kh + j) * d + e);
          p[j] = round_to<T>(scale * s);
          m = std::max(m, p[j]);
        }
        if (m == -std::numeric_limits<float>::infinity()) {  // nothing visible: o = 0, grads 0
          r.lse[qh + i] = inf;
          continue;
        }
        float sum = 0.0f;
        for (int j = 0; j < c.kv_len; ++j) sum += std::exp(p[j] - m);
        r.lse[qh + i] = m + std::log(sum);
        for (int j = 0; j < c.kv_len; ++j) p[j] = round_to<T>(std::exp(p[j] - m) / sum);
        for (int e = 0; e < d; ++e) {
          float acc = 0.0f;
          for (int j = 0; j < c.kv_len; ++j) acc += p[j] * at(pb.v, (kh + j) * d + e);
          r.o[qi + e] = round_to<T>(acc);
        }
        float rowsum = 0.0f;
        for (int j = 0; j < c.kv_len; ++j) {
          float acc = 0.0f;
          for (int e = 0; e < d; ++e) acc += at(pb.dout, qi + e) * at(pb.v, (kh + j) * d + e);
          dp[j] = round_to<T>(acc);
          rowsum += p[j] * dp[j];
        }
        for (int j = 0; j < c.kv_len; ++j) ds[j] = round_to<T>(p[j] * (dp[j] - rowsum));
        for (int e = 0; e < d; ++e) {
          float acc = 0.0f;
          for (int j = 0; j < c.kv_len; ++j) acc += ds[j] * at(pb.k, (kh + j) * d + e);
          r.dq[qi + e] = round_to<T>(scale * acc);
        }
        for (int j = 0; j < c.kv_len; ++j)
          for (int e = 0; e < d; ++e) {
            dv32[(kh + j) * d + e] += p[j] * at(pb.dout, qi + e);
            dk32[(kh + j) * d + e] += ds[j] * at(pb.q, qi + e);
          }
      }
    }
  for (std::size_t e = 0; e < pb.kv_size; ++e) {
    r.dv[e] = round_to<T>(dv32[e]);
    r.dk[e] = round_to<T>(scale * dk32[e]);
  }
  return r;
}

// The kernels under the emulator.
template <class T>
Outputs run_kernels(const Problem<T>& pb, const EmulatedLaunch& launch, bool deterministic) {
  attn::Shape shape{pb.c.batch, pb.c.q_heads, pb.c.kv_heads, pb.c.q_len, pb.c.kv_len, pb.d, pb.c.kv_capacity};
  attn::Options opt;
  opt.causal = pb.c.causal;
  opt.key_mask = pb.mask_ptr();
  const attn::Dims dims = attn::make_dims(shape, opt);

  // NaN-filled outputs: whatever a kernel fails to write shows.
  Buffer<T> o(pb.q_size, T::from_bits(0x7fff)), dq(pb.q_size, T::from_bits(0x7fff));
  Buffer<T> dk(pb.kv_size, T::from_bits(0x7fff)), dv(pb.kv_size, T::from_bits(0x7fff));
  Buffer<float> lse(pb.q_size / pb.d, std::numeric_limits<float>::quiet_NaN());
  attn::forward(attn::ForwardParams<T>{dims, pb.q.data(), pb.k.data(), pb.v.data(), o.data(), lse.data()}, launch);

  const attn::Workspace ws = attn::backward_workspace<T>(dims, deterministic);
  Buffer<float> delta(ws.delta, std::numeric_limits<float>::quiet_NaN());
  Buffer<float> dq_accum(ws.dq_accum, std::numeric_limits<float>::quiet_NaN());
  attn::backward(attn::BackwardParams<T>{dims, pb.q.data(), pb.k.data(), pb.v.data(), o.data(), pb.dout.data(),
                                         lse.data(), delta.data(), dq_accum.data(), deterministic, dq.data(),
                                         dk.data(), dv.data()},
                 launch);
  Outputs r;
  r.o = widen(o);
  r.lse.assign(lse.begin(), lse.end());
  r.dq = widen(dq);
  r.dk = widen(dk);
  r.dv = widen(dv);
  return r;
}

// Max abs error over the elements that hold results (k-side rows < kv_len); infinities
// must match exactly.
double max_error(const std::vector<double>& x, const std::vector<double>& ref, int row_len, int rows_per_head,
                 int valid_rows) {
  double err = 0.0;
  for (std::size_t e = 0; e < ref.size(); ++e) {
    if (int(e / std::size_t(row_len) % std::size_t(rows_per_head)) >= valid_rows) continue;
    if (std::isinf(ref[e]) || std::isinf(x[e])) {
      if (x[e] != ref[e]) return inf;
      continue;
    }
    const double diff = std::abs(x[e] - ref[e]);
    if (!(diff <= err)) err = std::isnan(diff) ? inf : diff;
  }
  return err;
}

constexpr double floor_tol = 1e-5;

template <class T>
void check_case(const Case& c, int d, emulate::FragmentLayout layout, std::uint64_t seed) {
  const Problem<T> pb(c, d, seed);
  const Outputs ref = reference(pb);
  const Outputs base = naive_attention(pb);
  EmulatedLaunch launch;
  launch.options.fragments = layout;
  launch.options.seed = seed;
  const Outputs got = run_kernels(pb, launch, false);

  const int ks = pb.kv_stride();
  struct Item {
    const char* name;
    const std::vector<double>* kernel;
    const std::vector<double>* naive;
    const std::vector<double>* ref;
    int row_len, rows_per_head, valid;
  } items[] = {
      {"o", &got.o, &base.o, &ref.o, d, c.q_len, c.q_len},
      {"lse", &got.lse, &base.lse, &ref.lse, 1, c.q_len, c.q_len},
      {"dq", &got.dq, &base.dq, &ref.dq, d, c.q_len, c.q_len},
      {"dk", &got.dk, &base.dk, &ref.dk, d, ks, c.kv_len},
      {"dv", &got.dv, &base.dv, &ref.dv, d, ks, c.kv_len},
  };
  for (const Item& it : items) {
    const double err = max_error(*it.kernel, *it.ref, it.row_len, it.rows_per_head, it.valid);
    const double base_err = max_error(*it.naive, *it.ref, it.row_len, it.rows_per_head, it.valid);
    const double tol = 2.0 * base_err + floor_tol;
    INFO(c.name, " d=", d, " ", (std::is_same_v<T, f16> ? "f16" : "bf16"), " ",
         (layout == emulate::FragmentLayout::natural ? "natural" : "permuted"), " ", it.name, ": kernel error ", err,
         ", naive ", base_err, ", tolerance ", tol);
    CHECK(err <= tol);
    if (std::getenv("RLXF_ATTENTION_VERBOSE"))
      std::printf("%-22s d=%-3d %-4s %-8s %-3s kernel %.3e naive %.3e (ratio %.2f)\n", c.name, d,
                  std::is_same_v<T, f16> ? "f16" : "bf16",
                  layout == emulate::FragmentLayout::natural ? "natural" : "permuted", it.name, err, base_err,
                  base_err > 0 ? err / base_err : 0.0);
  }
}

// Shapes. Each configuration runs all of them in f16 under one fragment layout and in bf16
// under the other (see run_config), so every shape meets both types and both layouts.
const Case cases[] = {
    // GQA, causal with q_len < kv_len (bottom-right: the last row sees every key), ragged, padding.
    {"gqa causal 70x130 mask", 2, 4, 2, 70, 130, 0, true, 1},
    // q_len > kv_len causal: rows 0..59 see no key (o = 0, lse = +inf); ragged tiles.
    {"causal 130x70", 1, 2, 1, 130, 70, 0, true, 0},
    // Non-causal, GQA, small ragged tiles, padding, KV cache capacity.
    {"gqa 17x17 cap 24 mask", 2, 4, 2, 17, 17, 24, false, 1},
    // Decode: one query, a fully masked batch row (o = 0, lse = +inf, zero grads).
    {"decode 1x70 masked row", 2, 2, 2, 1, 70, 80, true, 2},
    // Non-causal, q_len > kv_len, single key tile ragged.
    {"noncausal 70x17", 1, 2, 2, 70, 17, 0, false, 0},
    // No keys at all: every row o = 0, lse = +inf, dq = 0 (the backward main kernel is skipped).
    {"no keys 17x0", 1, 2, 1, 17, 0, 0, false, 0},
};

template <int D>
void run_config() {
  using emulate::FragmentLayout;
  std::uint64_t seed = 1000 + D;
  for (const Case& c : cases) {
    check_case<f16>(c, D, FragmentLayout::natural, seed++);
    check_case<bf16>(c, D, FragmentLayout::permuted, seed++);
    check_case<f16>(c, D, FragmentLayout::permuted, seed++);
    check_case<bf16>(c, D, FragmentLayout::natural, seed++);
  }
}

}  // namespace

TEST_CASE("cuda attention kernels (emulated): d=64 forward and backward vs the f64 CPU reference") {
  run_config<64>();
}

TEST_CASE("cuda attention kernels (emulated): d=128 forward and backward vs the f64 CPU reference") {
  run_config<128>();
}

TEST_CASE("cuda attention kernels (emulated): deterministic dq is bitwise reproducible") {
  // Blocks in two different orders: the deterministic dq (one slice per key tile, summed in
  // a fixed order) does not change by a bit, and agrees with the atomic one to rounding.
  const Case c{"causal 130x130 gqa", 1, 2, 1, 130, 130, 0, true, 0};
  const Problem<bf16> pb(c, 64, 7);
  EmulatedLaunch a, b;
  a.options.shuffle_blocks = b.options.shuffle_blocks = true;
  a.options.seed = 1;
  b.options.seed = 2;
  a.options.check_shared = b.options.check_shared = false;
  const Outputs x = run_kernels(pb, a, true), y = run_kernels(pb, b, true), z = run_kernels(pb, a, false);
  CHECK(x.dq == y.dq);
  CHECK(x.dk == y.dk);
  CHECK(x.dv == y.dv);
  double diff = 0.0;
  for (std::size_t e = 0; e < x.dq.size(); ++e) diff = std::max(diff, std::abs(x.dq[e] - z.dq[e]));
  CHECK(diff <= 0.02);  // a bf16 ulp or two of the largest entries
}

TEST_CASE("cuda attention: shipped configurations and their shared memory (as configs.hpp documents)") {
  using F64 = attn::Shipped<f16, 64>;
  using F128 = attn::Shipped<bf16, 128>;
  CHECK(F64::Forward::smem_bytes == 49408);
  CHECK(F128::Forward::smem_bytes == 73984);
  CHECK(F64::Backward::smem_bytes == 99072);
  CHECK(F128::Backward::smem_bytes == 131840);
  CHECK(F64::Forward::min_blocks == 3);
  CHECK(F128::Forward::min_blocks == 2);
  CHECK(F64::Backward::min_blocks == 1);
  CHECK(F128::Backward::min_blocks == 1);
  const attn::Dims dims = attn::make_dims(attn::Shape{2, 4, 2, 130, 70, 64, 0}, {});
  const cuda::LaunchConfig fwd = attn::forward_launch_config<F64::Forward>(dims);
  CHECK((fwd.grid.x == 3 && fwd.grid.y == 4 && fwd.grid.z == 2 && fwd.block.x == 128));
  const cuda::LaunchConfig bwd = attn::backward_launch_config<F64::Backward>(dims);
  CHECK((bwd.grid.x == 2 && bwd.grid.y == 2 && bwd.grid.z == 2 && bwd.block.x == 256));
  CHECK(attn::backward_workspace<f16>(dims, true).dq_accum == 2u * 2 * 4 * 130 * 64);
}

TEST_CASE("cuda attention: shapes without a kernel are refused") {
  attn::Shape shape{1, 2, 2, 8, 8, 96, 0};
  const attn::Dims dims = attn::make_dims(shape, {});
  Buffer<f16> x(1 * 2 * 8 * 96);
  Buffer<float> lse(16);
  EmulatedLaunch launch;
  CHECK_THROWS_AS(attn::forward(attn::ForwardParams<f16>{dims, x.data(), x.data(), x.data(), x.data(), lse.data()}, launch),
                  rlxf::Error);
  CHECK_THROWS_AS(attn::make_dims(attn::Shape{1, 3, 2, 8, 8, 64, 0}, {}), rlxf::Error);  // 3 q heads on 2 kv heads
}
