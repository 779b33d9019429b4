#pragma once
// Every public contract of rlxf in one place. Library types static_assert that they model
// their concepts; a user type that does not gets a compile error naming the concept.
// (Policy, Critic and Backend join as their layers land.)
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "rlxf/core/backend.hpp"

namespace rlxf {

class Rng;

// An optimizer over a ParameterList it was built with. It must guarantee:
// - step() applies one update from the gradients accumulated in the parameters, with the
//   current learning rate, and counts it;
// - zero_grad() sets every gradient it optimizes to zero;
// - lr()/set_lr() read and change the learning rate used by the next step();
// - steps() counts the updates taken, so `opt.set_lr(schedule(opt.steps()))` gives update s
//   (0-based) the schedule's rate at step s.
template <class O>
concept Optimizer = requires(O& opt, const O& const_opt, double lr) {
  opt.step();
  opt.zero_grad();
  opt.set_lr(lr);
  { const_opt.lr() } -> std::convertible_to<double>;
  { const_opt.steps() } -> std::convertible_to<std::size_t>;
};

// A learning-rate schedule: a copyable value invocable with a step (std::size_t, 0-based),
// returning the lr for that step. It must be a pure function of the step, so that a resumed
// run reproduces the same rates.
template <class S>
concept Schedule = std::copy_constructible<S> && std::regular_invocable<const S&, std::size_t> &&
                   std::convertible_to<std::invoke_result_t<const S&, std::size_t>, double>;

// A tokenizer: text (any bytes) to token ids and back. It must guarantee:
// - encode(text) returns ids in [0, vocab_size()), deterministically;
// - decode(encode(text)) == text for every byte string (lossless, invalid UTF-8 and NULs
//   included), and decode of an id outside [0, vocab_size()) throws rlxf::Error;
// - encode, decode and vocab_size are const and safe to call from several threads at once.
template <class T>
concept Tokenizer = requires(const T& tok, std::string_view text, std::span<const std::int32_t> ids) {
  { tok.encode(text) } -> std::same_as<std::vector<std::int32_t>>;
  { tok.decode(ids) } -> std::convertible_to<std::string>;
  { tok.vocab_size() } -> std::convertible_to<std::size_t>;
};

// A reward model: scores (prompt, response) text pairs. It must guarantee:
// - score(prompts, responses) returns one finite number per pair, in order, higher = better;
// - it throws rlxf::Error when the two spans differ in size or a prompt is not one it can read;
// - score is const and deterministic (the same pairs give the same numbers).
template <class R>
concept RewardModel = requires(const R& rm, std::span<const std::string> prompts,
                               std::span<const std::string> responses) {
  { rm.score(prompts, responses) } -> std::same_as<std::vector<double>>;
};

// An RL fine-tuning algorithm over a policy P and a reward model R. It must guarantee:
// - step(policy, reward_model, prompts, rng) does one round of the algorithm on these prompts
//   (sampling with rng, scoring with the reward model, updating the policy) and returns named
//   metrics as (name, value) pairs, TRL's names where they exist;
// - state() captures everything beyond the policy's weights that a resumed run needs, and
//   restore(state()) on an algorithm built the same way continues the run exactly.
template <class A, class P, class R>
concept Algorithm = RewardModel<R> &&
    requires(A& algo, const A& const_algo, P& policy, const R& rm, std::span<const std::string> prompts, Rng& rng) {
      { algo.step(policy, rm, prompts, rng) } -> std::same_as<std::vector<std::pair<std::string, double>>>;
      algo.restore(const_algo.state());
    };

// A compute backend: memory and the kernels of a transformer layer, so that code written
// once against it runs on the CPU (cpu::Backend) or a GPU (cuda::Backend<cuda::Gpu>, or
// cuda::Backend<cuda::emulate::Device>, the same kernels run by the CPU emulator). A model
// must guarantee:
// - value_type is the storage type of activations, weights and their gradients (float on
//   the CPU, bf16 on the GPU); statistics (lse, mean, rstd) are always float. Every op
//   computes in f32 at least (GEMM accumulation included) and rounds once to value_type when
//   it stores; results agree with the CPU backend's within value_type's rounding.
// - Buffer<T> is an owning RAII array in the backend's memory, movable, with data() (a
//   pointer the ops take, never dereferenced by the caller on a GPU backend) and size();
//   allocate<T>(n) returns n ZERO elements (gradient buffers start ready to accumulate).
// - upload(host, buf) / download(buf, host) convert f32 <-> value_type (round to nearest
//   even) and copy; host.size() must equal buf.size() (else rlxf::Error). Both are complete
//   when they return (host memory may be reused / read); download waits for queued ops.
// - ops are queued in call order on one stream and may run asynchronously; synchronize()
//   waits for all of them. Pointers are data() of the backend's buffers (plus offsets).
// - gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc): C (M, N) = alpha op(A) op(B)
//   + beta C, row-major, BLAS convention (cpu::gemm's): A stored (M, K) with lda >= K, or
//   (K, M) with lda >= M when ta == yes; B (K, N) ldb >= N, or (N, K) ldb >= K; C ldc >= N;
//   beta == 0 only writes C (it may hold NaN).
// - attention_forward(q, k, v, o, lse, dims, settings) and attention_backward(q, k, v, o,
//   lse, dout, dq, dk, dv, dims, settings): scaled dot-product attention with the layouts of
//   AttentionDims (core/backend.hpp) and the semantics of cpu::attention_forward /
//   attention_backward (a row with no visible key: o = 0, lse = +inf). A backend may support
//   only some head dims (the CUDA kernels: 64 and 128) and throws rlxf::Error for others.
// - layernorm_forward(x, gamma, beta, y, mean, rstd, N, C, eps) over N rows of C channels
//   (beta may be nullptr), saving mean and rstd (float, N); layernorm_backward(dy, x, gamma,
//   mean, rstd, dx, dgamma, dbeta, N, C) (dbeta may be nullptr).
// - gelu_forward(x, y, n) and gelu_backward(x, dy, dx, n): GELU, tanh form (GPT-2's).
// - ONE CONTRACT FOR GRADIENTS: every backward ADDS into all the gradients it produces (dq,
//   dk, dv; dx, dgamma, dbeta; dx), as the CPU kernels do: zero them before the first
//   contribution, and gradients of a value used twice simply accumulate.
// - name() is a short constant naming the backend ("cpu", "cuda").
// Throws rlxf::Error for arguments the backend cannot run, before queuing anything.
template <class B>
concept Backend =
    requires {
      typename B::value_type;
      typename B::template Buffer<float>;
      typename B::template Buffer<typename B::value_type>;
      typename B::template Buffer<std::uint8_t>;
    } &&
    std::movable<typename B::template Buffer<typename B::value_type>> &&
    std::movable<typename B::template Buffer<float>> &&
    requires(B& b, typename B::template Buffer<typename B::value_type>& buf,
             const typename B::template Buffer<typename B::value_type>& cbuf, std::span<const float> host_in,
             std::span<float> host_out, Transpose t, std::size_t n, float s, typename B::value_type* p,
             const typename B::value_type* cp, float* stat, const float* cstat, const AttentionDims& dims,
             const AttentionSettings& settings) {
      { B::name() } -> std::convertible_to<std::string_view>;
      { b.template allocate<typename B::value_type>(n) } -> std::same_as<typename B::template Buffer<typename B::value_type>>;
      { b.template allocate<float>(n) } -> std::same_as<typename B::template Buffer<float>>;
      { buf.data() } -> std::same_as<typename B::value_type*>;
      { cbuf.data() } -> std::same_as<const typename B::value_type*>;
      { cbuf.size() } -> std::convertible_to<std::size_t>;
      { b.template allocate<float>(n).data() } -> std::same_as<float*>;
      b.upload(host_in, buf);
      b.download(cbuf, host_out);
      b.synchronize();
      b.gemm(t, t, n, n, n, s, cp, n, cp, n, s, p, n);
      b.attention_forward(cp, cp, cp, p, stat, dims, settings);
      b.attention_backward(cp, cp, cp, cp, cstat, cp, p, p, p, dims, settings);
      b.layernorm_forward(cp, cp, cp, p, stat, stat, n, n, s);
      b.layernorm_backward(cp, cp, cp, cstat, cstat, p, p, p, n, n);
      b.gelu_forward(cp, p, n);
      b.gelu_backward(cp, cp, p, n);
    };

}  // namespace rlxf
