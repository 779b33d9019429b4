// Whole models on the emulated CUDA backend (cuda::Backend<cuda::emulate::Device>: the CUDA
// kernels run by the CPU emulator, bf16 activations and working weights, f32 master weights,
// gradients and optimizer moments) against the same models on cpu::Backend<float>: a tiny
// decoder of each family and a tiny encoder, head dim 64 (what the attention kernels take).
// Both models hold the same weights, rounded to bf16 first so that both start from the same
// numbers; the emulated model then differs only by rounding its activations to bf16.
//
// Tolerances, by rule. One bf16 rounding has a relative error of at most 2^-9; a forward
// through L blocks rounds each activation a few times a block, and the errors of the sums
// grow with the number of terms only as their square root, so a result of a forward or a
// backward is compared as a whole, in relative L2 norm:
//   forward (logits, pooled states):  ||z - ref|| <= 2^-5 ||ref||  (16 worst-case roundings)
//   every parameter gradient:         ||g - ref|| <= 2^-4 ||ref||  (the backward rounds each
//                                     activation gradient too, and reads the forward's)
// and the largest element error of the forward must stay within 2^-4 max|ref|. An op that
// ignored a mask, a bias, a head or a residual is off by O(1) of the norm and fails.
// One gradient is zero in exact arithmetic: the key projection's bias (it adds q.b to every
// score of a query, and softmax ignores a shift shared by all keys), so both backends give
// rounding noise; it must be noise, at most 2^-8 of the largest parameter gradient's norm.
// AdamW's first steps move each weight by about lr sign(g), whatever the size of g, so the
// weights after 3 steps are compared through their updates, ||dw - dw_ref|| <= 0.25
// ||dw_ref|| over each parameter: an element whose gradient is within bf16's noise may step
// the other way, and the rule lets that happen to at most 1.6% of a parameter's elements
// (each such flip adds (2 lr)^2 to the squared error of an update of norm^2 n lr^2); a
// missed, doubled or stale step is off by 1. The key bias steps on noise on any backend
// and is left out.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rlxf/cpu/backend.hpp"
#include "rlxf/cuda/emulate/device.hpp"
#include "rlxf/model/decoder.hpp"
#include "rlxf/model/encoder.hpp"
#include "rlxf/model/logprobs.hpp"
#include "rlxf/nn/parameter.hpp"
#include "rlxf/nn/storage.hpp"
#include "rlxf/optim/adamw.hpp"
#include "rlxf/optim/clip.hpp"
#include "rlxf/train/checkpoint.hpp"
#include "backend_parity.hpp"
#include "temp_dir.hpp"

namespace {

using rlxf::Rng;
using rlxf::Tensor;
using EmuBackend = rlxf::cuda::Backend<rlxf::cuda::emulate::Device>;
using Cpu = rlxf::cpu::Backend<float>;
namespace model = rlxf::model;
namespace nn = rlxf::nn;
namespace optim = rlxf::optim;

// The host values of an activation, as floats.
template <class Act>
std::vector<float> floats_of(const Act& a) {
  const auto& host = nn::to_host(a);
  std::vector<float> out(host.size());
  for (std::size_t i = 0; i < host.size(); ++i) out[i] = static_cast<float>(host.data()[i]);
  return out;
}

struct Agreement {
  double rel_l2 = 0;   // ||out - ref|| / ||ref||
  double rel_max = 0;  // max |out - ref| / max |ref|
};
Agreement agreement(std::span<const float> out, std::span<const float> ref) {
  REQUIRE(out.size() == ref.size());
  double err2 = 0, ref2 = 0, err_max = 0, ref_max = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double e = static_cast<double>(out[i]) - static_cast<double>(ref[i]);
    err2 += e * e;
    ref2 += static_cast<double>(ref[i]) * ref[i];
    err_max = std::max(err_max, std::abs(e));
    ref_max = std::max(ref_max, std::abs(static_cast<double>(ref[i])));
  }
  REQUIRE(ref2 > 0);  // a reference of zeros would make every rule vacuous
  return {std::sqrt(err2 / ref2), err_max / ref_max};
}

constexpr double forward_rel_l2 = 1.0 / 32, forward_rel_max = 1.0 / 16, grad_rel_l2 = 1.0 / 16,
                 noise_of_largest = 1.0 / 256, update_rel_l2 = 0.25;

double norm_of(std::span<const float> v) {
  double s = 0;
  for (const float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}
// The parameter whose gradient is zero in exact arithmetic (see the tolerances above).
bool zero_in_exact_arithmetic(const std::string& name) { return name.ends_with("k_proj.bias"); }

// Every parameter's gradient agrees.
template <class CpuModel, class EmuModel>
void check_gradients(CpuModel& cpu, EmuModel& emu) {
  auto cp = cpu.parameters();
  auto ep = emu.parameters();
  double largest = 0;
  for (const auto& r : cp) largest = std::max(largest, norm_of(nn::grads_of(*r.param)));
  for (std::size_t i = 0; i < cp.size(); ++i) {
    const std::vector<float> g = nn::grads_of(*ep[i].param), ref = nn::grads_of(*cp[i].param);
    if (zero_in_exact_arithmetic(cp[i].name)) {
      INFO(cp[i].name, ": gradient norms ", norm_of(g), " and ", norm_of(ref), ", the largest gradient's ", largest);
      CHECK(norm_of(g) <= noise_of_largest * largest);
      CHECK(norm_of(ref) <= noise_of_largest * largest);
      continue;
    }
    const Agreement a = agreement(g, ref);
    INFO(cp[i].name, ": gradient relative L2 error ", a.rel_l2);
    CHECK(a.rel_l2 <= grad_rel_l2);
  }
}

// Whether a device parameter's working (bf16) weights are its master weights rounded.
bool working_is_rounded_master(const nn::DeviceParameter<EmuBackend>& p) {
  const std::vector<rlxf::bf16> working = nn::to_host(p.value);
  const std::vector<float> master = nn::values_of(p);
  for (std::size_t j = 0; j < master.size(); ++j)
    if (working[j].to_float() != rlxf::test::round_bf16(master[j])) return false;
  return true;
}

// ---- decoders ----

model::DecoderConfig tiny_decoder(model::DecoderFamily family) {
  model::DecoderConfig c;
  c.family = family;
  c.vocab_size = 96;
  c.max_positions = 32;
  c.d_model = 128;
  c.n_layers = 2;
  c.n_heads = 2;  // head dim 64
  c.d_hidden = family == model::DecoderFamily::gpt2 ? 256 : 192;
  if (family == model::DecoderFamily::llama) {
    c.n_kv_heads = 1;  // grouped-query attention
    c.tie_embeddings = false;
    c.norm_eps = 1e-6;
  }
  return c;
}

// A left-padded batch (row 1 has two pads) and its next-token targets.
struct LmBatch {
  nn::Tokens ids;
  model::Mask mask;
  nn::Tokens targets;
  std::size_t count = 0;  // targets that are not ignored
};
LmBatch lm_batch(std::size_t vocab, std::uint64_t seed, std::size_t t = 12) {
  const std::size_t b = 2;
  LmBatch x{rlxf::zeros<std::int32_t, 2>({b, t}), rlxf::zeros<std::uint8_t, 2>({b, t}), {}, 0};
  Rng rng(seed);
  for (std::size_t i = 0; i < b; ++i)
    for (std::size_t j = 0; j < t; ++j) {
      x.ids(i, j) = static_cast<std::int32_t>(rng.next_below(static_cast<std::uint32_t>(vocab)));
      x.mask(i, j) = (i == 1 && j < 2) ? 0 : 1;
    }
  x.targets = model::next_token_targets(x.ids, &x.mask);
  for (const std::int32_t v : x.targets) x.count += v != rlxf::ignore_target;
  return x;
}

// Forward, mean cross-entropy over the targets, backward; returns the logits and the loss.
template <class B>
std::pair<std::vector<float>, double> lm_step(model::BasicDecoder<B>& m, const LmBatch& x) {
  typename model::BasicDecoder<B>::Cache cache;
  const auto logits = m.forward(x.ids, &x.mask, cache);
  model::LogprobCache<B> lp;
  const auto logp = model::token_logprobs<B>(logits, x.targets, lp, 1.0, m.backend());
  double loss = 0;
  for (const auto v : logp) loss -= static_cast<double>(v) / static_cast<double>(x.count);
  Tensor<typename B::accum_type, 2> dlogp = rlxf::zeros<typename B::accum_type, 2>(logp.shape());
  dlogp.fill(static_cast<typename B::accum_type>(-1.0 / static_cast<double>(x.count)));
  auto& be = m.backend().get();
  auto dlogits = nn::zero_activation(be, logits.shape());
  model::token_logprobs_backward<B>(logits, x.targets, lp, dlogp, dlogits, m.backend());
  m.backward(dlogits, cache);
  return {floats_of(logits), loss};
}

void check_decoder(model::DecoderFamily family) {
  const model::DecoderConfig cfg = tiny_decoder(family);
  EmuBackend emu_backend;
  Rng rng_cpu(7), rng_emu(7);
  model::BasicDecoder<Cpu> cpu(cfg, rng_cpu);
  model::BasicDecoder<EmuBackend> emu(cfg, rng_emu, nn::BackendRef<EmuBackend>(emu_backend));
  rlxf::test::share_weights(cpu.parameters(), emu.parameters());
  const LmBatch x = lm_batch(cfg.vocab_size, 11);

  const auto [logits_ref, loss_ref] = lm_step(cpu, x);
  const auto [logits, loss] = lm_step(emu, x);
  const Agreement f = agreement(logits, logits_ref);
  INFO("logits: relative L2 error ", f.rel_l2, ", relative max error ", f.rel_max, "; loss ", loss, " vs ", loss_ref);
  CHECK(f.rel_l2 <= forward_rel_l2);
  CHECK(f.rel_max <= forward_rel_max);
  CHECK(std::abs(loss - loss_ref) <= forward_rel_l2 * std::abs(loss_ref));
  check_gradients(cpu, emu);

  // 3 AdamW steps from the same weights, each from a fresh forward and backward.
  const optim::AdamWConfig adam{.lr = 1e-3, .weight_decay = 0.01};
  optim::AdamW<float> opt_cpu(cpu.parameters(), adam);
  optim::BasicAdamW<nn::DeviceParameter<EmuBackend>> opt_emu(emu.parameters(), adam);
  std::vector<std::vector<float>> before;
  for (auto& r : cpu.parameters()) before.push_back(nn::values_of(*r.param));
  for (int step = 0; step < 3; ++step) {
    if (step > 0) {
      opt_cpu.zero_grad();
      opt_emu.zero_grad();
      lm_step(cpu, x);
      lm_step(emu, x);
    }
    opt_cpu.step();
    opt_emu.step();
  }
  auto cp = cpu.parameters();
  auto ep = emu.parameters();
  for (std::size_t i = 0; i < cp.size(); ++i) {
    if (zero_in_exact_arithmetic(cp[i].name)) continue;
    const std::vector<float> w_ref = nn::values_of(*cp[i].param), w = nn::values_of(*ep[i].param);
    std::vector<float> dw(w.size()), dw_ref(w.size());
    for (std::size_t j = 0; j < w.size(); ++j) {
      dw[j] = w[j] - before[i][j];
      dw_ref[j] = w_ref[j] - before[i][j];
    }
    const Agreement a = agreement(dw, dw_ref);
    INFO(cp[i].name, ": update relative L2 error after 3 AdamW steps ", a.rel_l2);
    CHECK(a.rel_l2 <= update_rel_l2);
  }
  // The working weights are the masters rounded to bf16.
  for (const auto& r : ep) {
    INFO(r.name);
    CHECK(working_is_rounded_master(*r.param));
  }
}

// ---- encoder ----

// Forward to the pooled states, loss sum(w * pooled) for fixed weights w, backward.
template <class B>
std::vector<float> encoder_step(model::BasicEncoder<B>& m, const nn::Tokens& ids, const model::Mask& mask,
                                const Tensor<typename B::accum_type, 3>& w, B& be) {
  typename model::BasicEncoder<B>::Cache cache;
  const auto& pooled = m.forward(ids, nullptr, &mask, cache);
  m.backward(nn::activation_from_host(be, w), cache);
  return floats_of(pooled);
}

void check_encoder(model::Pooling pooling) {
  model::EncoderConfig cfg = rlxf::test::tiny_encoder_config(80, 2);
  cfg.pooling = pooling;
  EmuBackend emu_backend;
  Cpu cpu_backend;
  Rng rng_cpu(3), rng_emu(3);
  model::BasicEncoder<Cpu> cpu(cfg, rng_cpu);
  model::BasicEncoder<EmuBackend> emu(cfg, rng_emu, nn::BackendRef<EmuBackend>(emu_backend));
  rlxf::test::share_weights(cpu.parameters(), emu.parameters());
  const std::size_t b = 2, t = 10;
  nn::Tokens ids = rlxf::zeros<std::int32_t, 2>({b, t});
  model::Mask mask = rlxf::zeros<std::uint8_t, 2>({b, t});
  Rng data(5);
  for (std::size_t i = 0; i < b; ++i)
    for (std::size_t j = 0; j < t; ++j) {
      ids(i, j) = static_cast<std::int32_t>(data.next_below(static_cast<std::uint32_t>(cfg.vocab_size)));
      mask(i, j) = (i == 1 && j >= 7) ? 0 : 1;  // BERT pads on the right
    }
  const std::vector<float> w_values = rlxf::test::random_bf16_floats(b * cfg.d_model, 9);
  Tensor<float, 3> w = rlxf::zeros<float, 3>({b, 1, cfg.d_model});
  std::copy(w_values.begin(), w_values.end(), w.data());

  const std::vector<float> ref = encoder_step(cpu, ids, mask, w, cpu_backend);
  const std::vector<float> out = encoder_step(emu, ids, mask, w, emu_backend);
  const Agreement f = agreement(out, ref);
  INFO("pooled: relative L2 error ", f.rel_l2, ", relative max error ", f.rel_max);
  CHECK(f.rel_l2 <= forward_rel_l2);
  CHECK(f.rel_max <= forward_rel_max);
  check_gradients(cpu, emu);
}

}  // namespace

TEST_CASE("backend parity: a tiny GPT-2 decoder on the emulated CUDA backend against cpu::Backend<float>") {
  check_decoder(model::DecoderFamily::gpt2);
}

TEST_CASE("backend parity: a tiny LLaMA decoder (GQA, RoPE, SwiGLU) on the emulated CUDA backend against cpu::Backend<float>") {
  check_decoder(model::DecoderFamily::llama);
}

TEST_CASE("backend parity: a tiny BERT encoder on the emulated CUDA backend against cpu::Backend<float>") {
  SUBCASE("[CLS] pooler") { check_encoder(model::Pooling::cls); }
  SUBCASE("mean pooling") { check_encoder(model::Pooling::mean); }
}

TEST_CASE("checkpoints: the same file whichever backend wrote it, and each backend reads the other's") {
  const model::DecoderConfig cfg = tiny_decoder(model::DecoderFamily::llama);
  EmuBackend emu_backend;
  Rng rng_cpu(21), rng_emu(22);  // different weights: a load must replace all of them
  model::BasicDecoder<Cpu> cpu(cfg, rng_cpu);
  model::BasicDecoder<EmuBackend> emu(cfg, rng_emu, nn::BackendRef<EmuBackend>(emu_backend));
  rlxf::test::TempDir dir("backend_checkpoints");
  const auto cpu_file = dir.path / "cpu.safetensors", emu_file = dir.path / "emu.safetensors";
  rlxf::train::save_parameters(emu_file, emu.parameters());
  rlxf::train::load_parameters(emu_file, cpu.parameters());  // the CPU model now holds the emulated one's masters
  rlxf::train::save_parameters(cpu_file, cpu.parameters());
  const auto read = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  CHECK(read(cpu_file) == read(emu_file));  // byte for byte
  // And back: a fresh emulated model reads the CPU's file into its masters and working weights.
  Rng rng_other(23);
  model::BasicDecoder<EmuBackend> other(cfg, rng_other, nn::BackendRef<EmuBackend>(emu_backend));
  rlxf::train::load_parameters(cpu_file, other.parameters());
  auto cp = cpu.parameters();
  auto op = other.parameters();
  for (std::size_t i = 0; i < cp.size(); ++i) {
    INFO(cp[i].name);
    CHECK(nn::values_of(*op[i].param) == nn::values_of(*cp[i].param));
    CHECK(working_is_rounded_master(*op[i].param));
  }
}

TEST_CASE("parameter arena: a device optimizer packs its parameters and steps them in one launch, as one by one") {
  const model::DecoderConfig cfg = tiny_decoder(model::DecoderFamily::gpt2);
  EmuBackend emu_backend;
  Rng rng_a(31), rng_b(31);
  model::BasicDecoder<EmuBackend> a(cfg, rng_a, nn::BackendRef<EmuBackend>(emu_backend));
  model::BasicDecoder<EmuBackend> b(cfg, rng_b, nn::BackendRef<EmuBackend>(emu_backend));
  const LmBatch x = lm_batch(cfg.vocab_size, 12);
  lm_step(a, x);
  lm_step(b, x);
  const optim::AdamWConfig adam{.lr = 1e-3, .weight_decay = 0.1};
  optim::BasicAdamW<nn::DeviceParameter<EmuBackend>> packed(a.parameters(), adam, optim::decay_except_bias_and_norm);
  optim::BasicAdamW<nn::DeviceParameter<EmuBackend>> one_by_one(b.parameters(), adam, optim::decay_except_bias_and_norm);
  // Packing moved nothing: the gradients (and weights) are what backward left.
  const auto pa = a.parameters();
  const auto pb = b.parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) CHECK(nn::grads_of(*pa[i].param) == nn::grads_of(*pb[i].param));
  // Every parameter of `a` is a slice of one arena; so are b's, until a second optimizer
  // repacks them, after which `one_by_one` finds its arena gone and updates them one by one.
  for (const auto& r : pa) CHECK(r.param->master.storage() == pa.front().param->master.storage());
  const optim::BasicAdamW<nn::DeviceParameter<EmuBackend>> repacker(b.parameters(), adam);
  REQUIRE(nn::arena_gradients(pa).has_value());
  // The clipping norm over the arena in one pass, and parameter by parameter over a list that
  // is not the whole arena (the first parameter left out, added back by hand).
  const double norm = optim::grad_norm(pa);
  const auto rest = decltype(pa)(pa.begin() + 1, pa.end());
  REQUIRE_FALSE(nn::arena_gradients(rest).has_value());
  const double first = optim::grad_norm(decltype(pa)(pa.begin(), pa.begin() + 1));
  CHECK(std::abs(norm * norm - (optim::grad_norm(rest) * optim::grad_norm(rest) + first * first)) <= 1e-12 * norm * norm);
  for (int step = 0; step < 2; ++step) {
    // The packed step is two launches whatever the parameter count: one adamw over the arena
    // (both weight-decay groups) and one cast to the working weights.
    const auto before = emu_backend.device().launches();
    packed.step();
    CHECK(emu_backend.device().launches() - before == 2);
    one_by_one.step();
  }
  for (std::size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].name);
    CHECK(nn::values_of(*pa[i].param) == nn::values_of(*pb[i].param));  // the same bits
    CHECK(working_is_rounded_master(*pa[i].param));
    CHECK(working_is_rounded_master(*pb[i].param));
  }
  // A restored state lands in the arena's moments.
  const auto state = packed.state();
  optim::BasicAdamW<nn::DeviceParameter<EmuBackend>> resumed(a.parameters(), adam, optim::decay_except_bias_and_norm);
  resumed.restore(state);
  for (std::size_t i = 0; i < pa.size(); ++i) CHECK(resumed.first_moment(i) == packed.first_moment(i));
}

TEST_CASE("planned steps: a training step of a shape seen before allocates nothing on the device, and computes the same bits") {
  const model::DecoderConfig cfg = tiny_decoder(model::DecoderFamily::llama);
  EmuBackend planned_backend, plain_backend;
  Rng rng_a(41), rng_b(41);
  model::BasicDecoder<EmuBackend> a(cfg, rng_a, nn::BackendRef<EmuBackend>(planned_backend));
  model::BasicDecoder<EmuBackend> b(cfg, rng_b, nn::BackendRef<EmuBackend>(plain_backend));
  const optim::AdamWConfig adam{.lr = 1e-3, .weight_decay = 0.01};
  const auto pa = a.parameters();
  const auto pb = b.parameters();
  optim::BasicAdamW<nn::DeviceParameter<EmuBackend>> opt_a(pa, adam), opt_b(pb, adam);
  const LmBatch x = lm_batch(cfg.vocab_size, 12), y = lm_batch(cfg.vocab_size, 13, 8);
  // Steps of shapes x, x, y, x: the first x and the y are recorded, the others replay.
  const std::vector<const LmBatch*> steps{&x, &x, &y, &x};
  std::vector<std::uint64_t> allocated;
  for (const LmBatch* batch : steps) {
    const auto before = planned_backend.device().allocations();
    {
      const auto planned = nn::planned_step(pa, nn::step_key(batch->ids.shape()[0], batch->ids.shape()[1]));
      opt_a.zero_grad();
      lm_step(a, *batch);
      optim::clip_grad_norm(pa, 0.5);
      opt_a.step();
    }
    allocated.push_back(planned_backend.device().allocations() - before);
    opt_b.zero_grad();
    lm_step(b, *batch);
    optim::clip_grad_norm(pb, 0.5);
    opt_b.step();
    for (std::size_t i = 0; i < pa.size(); ++i) {
      INFO(pa[i].name);
      REQUIRE(nn::values_of(*pa[i].param) == nn::values_of(*pb[i].param));  // the same bits
    }
  }
  INFO("device allocations per step: ", allocated[0], ", ", allocated[1], ", ", allocated[2], ", ", allocated[3]);
  CHECK(allocated[0] > 20);  // recorded (and the arena made)
  CHECK(allocated[1] == 0);
  CHECK(allocated[2] > 20);  // another shape: recorded
  CHECK(allocated[3] == 0);  // the first shape's plan is still there
  const rlxf::MemoryPlanner& planner = planned_backend.memory_planner();
  CHECK(planner.stats().recorded == 2);
  CHECK(planner.stats().replayed == 2);
  CHECK(planner.stats().diverged == 0);
  // The arena was made (for the larger of the two plans).
  CHECK(planned_backend.planned_arena_bytes() > 0);
}
