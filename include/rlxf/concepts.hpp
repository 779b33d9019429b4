#pragma once
// Every public contract of rlxf in one place. Library types static_assert that they model
// their concepts; a user type that does not gets a compile error naming the concept.
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
#include "rlxf/core/dtype.hpp"

namespace rlxf {

class Rng;
namespace model {
struct SequenceBatch;
struct GenerationConfig;
}  // namespace model

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

// A generative policy for RL fine-tuning: a language model with a value head that shares its
// trunk, read over prompt + response sequences laid out as generation makes them
// (model/policy.hpp: left-padded prompts of width P, then N response tokens).
// model::BasicPolicy<B> models it on every backend. It must guarantee:
// - forward(batch, temperature, with_values, cache) returns Outputs: .logprobs (B, N), the
//   log-prob of each response token under softmax(logits / temperature), 0 where masked, and
//   with_values .values (B, N), the value head before each response token; host tensors of
//   float; it fills cache for backward and entropies;
// - backward(dlogprobs, dvalues, cache) accumulates the gradient of sum(dlogprobs logprobs) +
//   sum(dvalues values) into the parameters (dvalues null exactly when forward computed no
//   values); entropies(cache) is (B, N), the entropy of softmax(logits / temperature) at each
//   response position of that forward (0 where masked);
// - generate(prompts, prompt_mask, config, rng) samples answers to left-padded prompts
//   (model/generation.hpp's contract), reproducibly from rng;
// - parameters(with_value_head) lists its trainable parameters under Hugging Face names, all
//   of one parameter type that optim::BasicAdamW and optim::clip_grad_norm take;
//   vocab_size() is the size of its vocabulary;
// - a copy is an independent policy with the same weights (a frozen reference).
template <class P>
concept Policy =
    std::copy_constructible<P> && requires {
      typename P::Cache;
      typename P::Outputs;
      typename P::Tokens;
      typename P::Mask;
    } && requires(P& p, const P& cp, const model::SequenceBatch& batch, typename P::Cache& cache,
                  const typename P::Outputs& out, const typename P::Tokens& prompts, const typename P::Mask& mask,
                  const model::GenerationConfig& config, Rng& rng, double temperature, bool flag) {
      { cp.forward(batch, temperature, flag, cache) } -> std::same_as<typename P::Outputs>;
      p.backward(out.logprobs, &out.values, cache);
      p.backward(out.logprobs, nullptr, cache);
      { cp.entropies(cache) } -> std::same_as<std::remove_cvref_t<decltype(out.logprobs)>>;
      cp.generate(prompts, mask, config, rng).logprobs;
      p.parameters(flag).size();
      p.parameters(flag)[0].name;
      p.parameters(flag)[0].param->zero_grad();
      { cp.vocab_size() } -> std::convertible_to<std::size_t>;
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
// once against it runs on the CPU (cpu::Backend<float>, cpu::Backend<double>) or a GPU
// (cuda::Backend<cuda::Gpu>, or cuda::Backend<cuda::emulate::Device>, the same kernels run
// by the CPU emulator). A model must guarantee:
// - value_type is the storage type of activations, working weights and activation gradients
//   (float or double on the CPU, bf16 on the GPU); accum_type (float, or double on
//   cpu::Backend<double>) that of statistics (lse, mean, rstd, log-probs). Every op computes
//   in f32 at least (GEMM accumulation included) and rounds once to value_type when it
//   stores; results agree with the CPU backend's within value_type's rounding.
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
//   (beta may be nullptr), saving mean and rstd (accum_type, N); layernorm_backward(dy, x,
//   gamma, mean, rstd, dx, dgamma, dbeta, N, C) (dbeta may be nullptr; dgamma and dbeta are
//   accum_type, the precision of weight gradients).
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
      typename B::accum_type;
      typename B::template Buffer<float>;
      typename B::template Buffer<typename B::value_type>;
      typename B::template Buffer<std::uint8_t>;
    } &&
    std::movable<typename B::template Buffer<typename B::value_type>> &&
    std::movable<typename B::template Buffer<float>> &&
    requires(B& b, typename B::template Buffer<typename B::value_type>& buf,
             const typename B::template Buffer<typename B::value_type>& cbuf, std::span<const float> host_in,
             std::span<float> host_out, Transpose t, std::size_t n, float s, typename B::value_type* p,
             const typename B::value_type* cp, typename B::accum_type* stat, const typename B::accum_type* cstat,
             const AttentionDims& dims, const AttentionSettings& settings) {
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
      b.layernorm_backward(cp, cp, cp, cstat, cstat, p, stat, stat, n, n);
      b.gelu_forward(cp, p, n);
      b.gelu_backward(cp, cp, p, n);
    };

// A backend that trains: Backend plus everything else one step of a decoder (GPT-2, LLaMA)
// or encoder (BERT) needs, forward, backward and update, so that nothing of a step leaves
// the backend's memory but the scalars a caller asks for. With V = value_type and
// A = accum_type (the precision of master weights, weight gradients, optimizer moments and
// statistics), a model must guarantee, beyond Backend's contract (gradients ADD, errors
// before queuing, ops in call order):
// - memory: Buffer<T> for T in {V, A, float, bf16, std::int32_t, std::uint8_t};
//   copy_to_device(std::span<const T> host, T* dst) and copy_to_host(const T* src,
//   std::span<T> host) move host.size() elements to or from any sub-range of a buffer,
//   complete on return (copy_to_host after the queued ops); copy(src, dst, n) and zero(p, n)
//   are queued; cast<From, To>(src, dst, n) converts between V, A and float (round to
//   nearest even), e.g. f32 master weights to bf16 working weights.
// - embedding_forward(ids, table, out, tokens, dim, accumulate): out[i] (+)= table[ids[i]]
//   (rows of dim); embedding_backward(ids, dout, dtable, tokens, dim): dtable[ids[i]] +=
//   dout[i], deterministic (each row's contributions summed in token order). Ids must be in
//   range (the caller checks them on the host; a GPU cannot throw).
// - gemm_epilogue(..., C, ldc, bias, epilogue): gemm, then + bias[n] (A, length N, or
//   nullptr), then the Epilogue, before the one rounding to V. gemm_batched(..., A, lda,
//   stride_a, B, ldb, stride_b, beta, C, ldc, stride_c, batch): batch independent GEMMs,
//   matrices stride_* elements apart. gemm_accumulate(ta, tb, M, N, K, alpha, A, lda, B, ldb,
//   C, ldc): C += alpha op(A) op(B) with C in A precision (weight gradients).
// - bias_backward(dy, dbias, rows, cols): dbias (A) += column sums of dy (rows, cols).
//   add(x, y, n): y += x (residuals, gradients of a value read twice). scale(x, n, s): x *= s
//   on A (gradient clipping). sum_of_squares(x, n): sum of x^2 over A values, returned to the
//   host as double, the same bits on every call (clipping's norm).
// - split_heads(x, y, batch, len, heads, head_dim, capacity, offset): x (batch, len, heads *
//   head_dim) token-major into rows [offset, offset + len) of y (batch, heads, capacity,
//   head_dim) (capacity = len, offset = 0 for a plain split; a KV cache otherwise);
//   merge_heads(x, y, batch, len, heads, head_dim): (batch, heads, len, head_dim) back to
//   (batch, len, heads * head_dim).
// - rmsnorm_forward(x, gamma, y, rstd, N, C, eps) / rmsnorm_backward(dy, x, gamma, rstd, dx,
//   dgamma, N, C) as cpu::rmsnorm_*; gelu_forward / gelu_backward with a GeluForm (tanh,
//   exact); swiglu_forward(gate, up, y, n) / swiglu_backward(gate, up, dy, dgate, dup, n) as
//   cpu::swiglu_*; tanh_forward(x, y, n) / tanh_backward(y, dy, dx, n): y = tanh(x), dx +=
//   dy (1 - y^2) from the forward's output (BERT's pooler); rope(x, positions, tokens,
//   heads, head_dim, theta, max_positions, inverse): cpu::rope_forward (inverse:
//   rope_backward) in place on (tokens, heads, head_dim), positions (int32, tokens) each
//   below max_positions.
// - token_logprobs(logits, targets, logp, lse, entropy, rows, vocab, temperature): for each
//   row of logits (V, rows x vocab) with z = logits / temperature, lse = logsumexp(z),
//   logp = z[target] - lse (0 where the target is ignore_target), entropy (nullptr, or A per
//   row) of softmax(z); token_logprobs_backward(logits, targets, lse, dlogp, dlogits, rows,
//   vocab, temperature): dlogits += dlogp (onehot(target) - softmax(z)) / temperature.
//   Cross-entropy is -logp at temperature 1. Nothing of a vocabulary-wide row leaves the
//   backend.
// - adamw(param, grad, m, v, n, step): the AdamW update (optim/adamw.hpp) of n A values with
//   the scalars of AdamWStep (weight decay on the first step.decayed elements only).
template <class B>
concept TrainingBackend =
    Backend<B> &&
    requires {
      typename B::template Buffer<typename B::accum_type>;
      typename B::template Buffer<bf16>;
      typename B::template Buffer<std::int32_t>;
    } &&
    requires(B& b, typename B::value_type* p, const typename B::value_type* cp, typename B::accum_type* a,
             const typename B::accum_type* ca, const std::int32_t* ids, std::span<const typename B::value_type> hv,
             std::span<typename B::value_type> hv_out, std::span<const std::int32_t> hi, std::int32_t* di,
             std::span<const typename B::accum_type> ha, std::span<typename B::accum_type> ha_out, Transpose t,
             std::size_t n, float s, double d, bool flag, GeluForm form, GemmEpilogue epilogue, const AdamWStep& step) {
      { b.template allocate<typename B::accum_type>(n).data() } -> std::same_as<typename B::accum_type*>;
      { b.template allocate<std::int32_t>(n).data() } -> std::same_as<std::int32_t*>;
      { b.template allocate<bf16>(n).data() } -> std::same_as<bf16*>;
      b.copy_to_device(hv, p);
      b.copy_to_host(cp, hv_out);
      b.copy_to_device(ha, a);
      b.copy_to_host(ca, ha_out);
      b.copy_to_device(hi, di);
      b.copy(cp, p, n);
      b.zero(p, n);
      b.template cast<typename B::accum_type, typename B::value_type>(ca, p, n);
      b.template cast<typename B::value_type, typename B::accum_type>(cp, a, n);
      b.embedding_forward(ids, cp, p, n, n, flag);
      b.embedding_backward(ids, cp, a, n, n);
      b.gemm_epilogue(t, t, n, n, n, s, cp, n, cp, n, s, p, n, ca, epilogue);
      b.gemm_batched(t, t, n, n, n, s, cp, n, n, cp, n, n, s, p, n, n, n);
      b.gemm_accumulate(t, t, n, n, n, s, cp, n, cp, n, a, n);
      b.bias_backward(cp, a, n, n);
      b.add(cp, p, n);
      b.scale(a, n, d);
      { b.sum_of_squares(ca, n) } -> std::same_as<double>;
      b.split_heads(cp, p, n, n, n, n, n, n);
      b.merge_heads(cp, p, n, n, n, n);
      b.rmsnorm_forward(cp, cp, p, a, n, n, s);
      b.rmsnorm_backward(cp, cp, cp, ca, p, a, n, n);
      b.gelu_forward(cp, p, n, form);
      b.gelu_backward(cp, cp, p, n, form);
      b.swiglu_forward(cp, cp, p, n);
      b.swiglu_backward(cp, cp, cp, p, p, n);
      b.tanh_forward(cp, p, n);
      b.tanh_backward(cp, cp, p, n);
      b.rope(p, ids, n, n, n, d, n, flag);
      b.token_logprobs(cp, ids, a, a, a, n, n, d);
      b.token_logprobs_backward(cp, ids, ca, ca, p, n, n, d);
      b.adamw(a, ca, a, a, n, step);
    };

}  // namespace rlxf
