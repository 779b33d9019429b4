#pragma once
// The plain types the Backend concept (concepts.hpp) speaks in, shared by every backend
// (cpu/backend.hpp, cuda/backend.hpp) without either depending on the other: a GEMM
// operand's transposition, an attention problem's shape and options (the fields of
// cpu::AttentionShape / AttentionOptions; each backend converts them to its kernels' own
// structs), and the aligned allocator of the host backends' buffers. Light on purpose:
// concepts.hpp, which everything includes, includes this.
#include <cstddef>
#include <cstdint>
#include <new>

namespace rlxf {

// Whether a GEMM operand enters the product transposed (BLAS's 'N' / 'T').
enum class Transpose : bool { no = false, yes = true };

// The two GELU forms: tanh is GPT-2's approximation 0.5 x (1 + tanh(sqrt(2/pi) (x +
// 0.044715 x^3))); exact is BERT's x Phi(x) = 0.5 x erfc(-x / sqrt(2)), Phi the standard
// normal distribution function.
enum class GeluForm { tanh, exact };

// What a GEMM's epilogue applies to alpha op(A) op(B) + beta C before it stores: nothing, or
// GELU (tanh form, GPT-2's MLP) after the bias.
enum class GemmEpilogue { none, gelu_tanh };

// The target of a row without one: its log-prob is 0 and it sends no gradient (PyTorch's
// cross-entropy ignore_index default).
inline constexpr std::int32_t ignore_target = -100;

// The scalars of one AdamW update (optim/adamw.hpp's formula) at step t, in double as
// optim::AdamW computes them: correction1 = 1 - beta1^t, correction2 = 1 - beta2^t, and the
// weight decay, which the first `decayed` elements of the range take and the rest do not (an
// arena packs the parameters its DecayRule decays first, so one update covers both groups).
struct AdamWStep {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  double correction1 = 1, correction2 = 1;
  std::size_t decayed = SIZE_MAX;
};

// An attention problem, in elements. Layouts, row-major and contiguous:
//   q, o, dout, dq : (batch, q_heads, q_len, head_dim)
//   k, v, dk, dv   : (batch, kv_heads, kv_stride(), head_dim), rows [0, kv_len) of each head used
//   lse            : (batch, q_heads, q_len), f32
// q head h reads kv head h / (q_heads / kv_heads) (grouped-query attention).
struct AttentionDims {
  std::size_t batch = 0, q_heads = 0, kv_heads = 0, q_len = 0, kv_len = 0, head_dim = 0;
  std::size_t kv_capacity = 0;  // rows per kv head in k, v, dk, dv (a KV cache); 0 means kv_len

  std::size_t kv_stride() const { return kv_capacity ? kv_capacity : kv_len; }
  std::size_t q_elements() const { return batch * q_heads * q_len * head_dim; }
  std::size_t kv_elements() const { return batch * kv_heads * kv_stride() * head_dim; }
  std::size_t rows() const { return batch * q_heads * q_len; }  // elements of lse
};

// How scores are formed: S = scale Q K^T, with hidden keys at -inf.
struct AttentionSettings {
  bool causal = false;  // query i sees key j iff j <= i + (kv_len - q_len) (bottom-right aligned)
  double scale = 0.0;   // 0 means 1 / sqrt(head_dim)
  // (batch, kv_stride) bytes in the backend's memory (b.allocate<std::uint8_t>), 1 = attend,
  // 0 = padding; nullptr: every key.
  const std::uint8_t* key_mask = nullptr;
};

// Allocator of `Alignment`-byte aligned storage for host buffers that stand in for device
// memory: the CUDA kernels' 128-bit accesses need 16-byte alignment, cudaMalloc gives 256,
// and the CPU kernels round the same whatever thread computes a row only on aligned data.
template <class T, std::size_t Alignment = 256>
struct AlignedAllocator {
  static_assert(Alignment >= alignof(T) && (Alignment & (Alignment - 1)) == 0);
  using value_type = T;
  template <class U>
  struct rebind {
    using other = AlignedAllocator<U, Alignment>;
  };
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U, Alignment>&) noexcept {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{Alignment}));
  }
  void deallocate(T* p, std::size_t n) noexcept { ::operator delete(p, n * sizeof(T), std::align_val_t{Alignment}); }
  friend bool operator==(const AlignedAllocator&, const AlignedAllocator&) { return true; }
};

}  // namespace rlxf
