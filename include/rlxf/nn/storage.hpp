#pragma once
// Where the layers keep what they compute: arrays and activations in a backend's memory.
// - A CPU backend's memory is the host's (B::host_memory): an Array is a std::vector and an
//   Activation an xtensor Tensor, which callers read and write directly, as always.
// - Any other backend's (a GPU's, and the emulated GPU's, whose memory happens to be the
//   host's but is treated as a device's, so the tests catch a layer that reads it): a
//   DeviceArray / DeviceTensor owns a Buffer of the backend and knows the backend that made
//   it, so copying one copies on the device. Their data() is for the backend's ops only;
//   to_host and the transfer functions below move values across.
// The layers are written once against both: empty_activation / zero_activation make
// activations, zeros_array / to_backend make arrays, and shape(), size(), data() read them.
#include <array>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "rlxf/core/checked.hpp"
#include "rlxf/core/dtype.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/core/tensor.hpp"
#include "rlxf/nn/backend.hpp"

namespace rlxf::nn {

// Whether the layers may read B's memory from the host (the CPU backends say so).
template <class B>
inline constexpr bool host_memory = requires { requires B::host_memory; };

// n elements of U in a non-host backend's memory, with value semantics: memory of its own
// (from the backend's allocate_shared: a planned step's arena slice or a buffer), or a slice
// of a shared buffer (a parameter arena, nn/parameter.hpp), which it keeps alive. A copy is
// always new memory of its own.
template <class B, class U>
class DeviceArray {
 public:
  using value_type = U;
  using Buffer = typename B::template Buffer<U>;

  DeviceArray() = default;
  // n zero elements.
  DeviceArray(B& backend, std::size_t n) : backend_(&backend), size_(n), storage_size_(n) {
    std::tie(owner_, data_) = backend.template allocate_shared<U>(n);
  }
  // Elements [offset, offset + n) of `owner`.
  DeviceArray(B& backend, std::shared_ptr<Buffer> owner, std::size_t offset, std::size_t n)
      : backend_(&backend), data_(owner->data() + offset), size_(n), offset_(offset), storage_size_(owner->size()) {
    RLXF_REQUIRE(offset + n <= owner->size(), "DeviceArray: a slice [", offset, ", ", offset + n,
                 ") of a buffer of ", owner->size());
    owner_ = std::move(owner);
  }
  DeviceArray(const DeviceArray& other) : backend_(other.backend_), size_(other.size_), storage_size_(other.size_) {
    if (size_ == 0) return;
    std::tie(owner_, data_) = backend_->template allocate_shared<U>(size_);
    backend_->copy(other.data(), data_, size_);
  }
  DeviceArray& operator=(const DeviceArray& other) {
    if (this != &other) *this = DeviceArray(other);
    return *this;
  }
  DeviceArray(DeviceArray&& other) noexcept { swap(other); }
  DeviceArray& operator=(DeviceArray&& other) noexcept {
    DeviceArray(std::move(other)).swap(*this);
    return *this;
  }

  U* data() { return data_; }
  const U* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // The backend that holds it (null for a default-constructed, empty array).
  B* backend() const { return backend_; }
  // What holds its memory (the same for every slice of one buffer), where in it its elements
  // start and how many that holds (an arena's layout).
  const void* storage() const { return owner_.get(); }
  std::size_t offset() const { return offset_; }
  std::size_t storage_size() const { return storage_size_; }

 private:
  void swap(DeviceArray& other) noexcept {
    std::swap(backend_, other.backend_);
    owner_.swap(other.owner_);
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(offset_, other.offset_);
    std::swap(storage_size_, other.storage_size_);
  }
  B* backend_ = nullptr;
  std::shared_ptr<void> owner_;
  U* data_ = nullptr;
  std::size_t size_ = 0, offset_ = 0, storage_size_ = 0;
};

// A row-major tensor of rank N of B's value type in a non-host backend's memory.
template <class B, std::size_t N>
class DeviceTensor {
 public:
  using value_type = typename B::value_type;
  using shape_type = std::array<std::size_t, N>;

  DeviceTensor() = default;
  // Zero elements of `shape`.
  DeviceTensor(B& backend, const shape_type& shape) : shape_(shape), data_(backend, elements(shape)) {}

  const shape_type& shape() const { return shape_; }
  std::size_t size() const { return data_.size(); }
  value_type* data() { return data_.data(); }
  const value_type* data() const { return data_.data(); }
  B* backend() const { return data_.backend(); }

 private:
  static std::size_t elements(const shape_type& shape) {
    std::size_t n = 1;
    for (const std::size_t d : shape) n = checked_mul(n, d, "device tensor shape");
    return n;
  }
  shape_type shape_{};
  DeviceArray<B, value_type> data_;
};

// A training step whose device memory is planned (core/memory_plan.hpp): while it lives, the
// backend's allocations are recorded, the first time a step of this shape (`key`, e.g. the
// minibatch's rows and width) runs, and served from one arena every time after. Declare it
// before anything the step allocates, so that all of it is released when the step ends. On a
// backend that does not plan (the CPU's) it does nothing.
template <class B>
class PlannedStep {
 public:
  PlannedStep(B& backend, std::uint64_t key) : backend_(backend), exceptions_(std::uncaught_exceptions()) {
    if constexpr (plans) backend_.begin_planned_step(key);
  }
  ~PlannedStep() {
    if constexpr (plans) backend_.end_planned_step(std::uncaught_exceptions() == exceptions_);
  }
  PlannedStep(const PlannedStep&) = delete;
  PlannedStep& operator=(const PlannedStep&) = delete;

 private:
  static constexpr bool plans = requires(B& b) { b.begin_planned_step(std::uint64_t{}); };
  B& backend_;
  int exceptions_;
};

// The key of a step over a (rows x width) batch.
inline std::uint64_t step_key(std::size_t rows, std::size_t width) {
  return (static_cast<std::uint64_t>(rows) << 32) ^ static_cast<std::uint64_t>(width);
}

// A layer's array of U in B's memory: std::vector on the host, DeviceArray elsewhere.
template <class B, class U>
using Array = std::conditional_t<host_memory<B>, std::vector<U>, DeviceArray<B, U>>;

// Activations flowing between layers, (batch, time, channels), in the backend's value type
// (X: a backend, or float / double for the CPU).
template <class X>
using Activation = std::conditional_t<host_memory<backend_for_t<X>>, Tensor<typename backend_for_t<X>::value_type, 3>,
                                      DeviceTensor<backend_for_t<X>, 3>>;

// An activation of `shape` whose elements the caller overwrites (zeros on a device).
template <class B>
Activation<B> empty_activation(B& backend, const std::array<std::size_t, 3>& shape) {
  if constexpr (host_memory<B>) {
    (void)backend;
    return Activation<B>(shape);
  } else {
    return Activation<B>(backend, shape);
  }
}
// An activation of `shape` filled with zeros (a gradient to accumulate into).
template <class B>
Activation<B> zero_activation(B& backend, const std::array<std::size_t, 3>& shape) {
  if constexpr (host_memory<B>) {
    (void)backend;
    return zeros<typename B::value_type, 3>(shape);
  } else {
    return Activation<B>(backend, shape);
  }
}

// n zero elements of U in B's memory.
template <class U, class B>
Array<B, U> zeros_array(B& backend, std::size_t n) {
  if constexpr (host_memory<B>) {
    (void)backend;
    return std::vector<U>(n, U(0));
  } else {
    return DeviceArray<B, U>(backend, n);
  }
}

// A copy of host values in B's memory.
template <class U, class B>
Array<B, U> to_backend(B& backend, std::span<const U> host) {
  if constexpr (host_memory<B>) {
    (void)backend;
    return std::vector<U>(host.begin(), host.end());
  } else {
    DeviceArray<B, U> out(backend, host.size());
    if (!host.empty()) backend.copy_to_device(host, out.data());
    return out;
  }
}

// Host values as B's ops read them: the host span itself on a CPU backend, a device copy
// elsewhere. Either has data(); keep it alive while the ops that read it are queued.
template <class U, class B>
auto on_backend(B& backend, std::span<const U> host) {
  if constexpr (host_memory<B>) {
    (void)backend;
    return host;
  } else {
    return to_backend<U>(backend, host);
  }
}

// The values of an array or a device tensor, on the host (after the ops queued before).
template <class B, class U>
std::vector<U> to_host(const DeviceArray<B, U>& a) {
  std::vector<U> out(a.size());
  if (!out.empty()) a.backend()->copy_to_host(a.data(), std::span<U>(out));
  return out;
}
template <class B, std::size_t N>
Tensor<typename B::value_type, N> to_host(const DeviceTensor<B, N>& t) {
  Tensor<typename B::value_type, N> out(t.shape());
  if (t.size() != 0) t.backend()->copy_to_host(t.data(), std::span<typename B::value_type>(out.data(), out.size()));
  return out;
}
template <class T, std::size_t N>
const Tensor<T, N>& to_host(const Tensor<T, N>& t) {
  return t;
}
template <class U>
const std::vector<U>& to_host(const std::vector<U>& a) {
  return a;
}

// An activation's values on the host in B's accumulation type, for the small outputs the host
// reads (classifier logits, values): the tensor itself on a CPU backend, a widened copy of a
// device's.
template <class B>
decltype(auto) accum_values(const Activation<B>& a) {
  if constexpr (host_memory<B>) {
    static_assert(std::is_same_v<typename B::accum_type, typename B::value_type>);
    return (a);
  } else {
    const Tensor<typename B::value_type, 3> host = to_host(a);
    Tensor<typename B::accum_type, 3> out(host.shape());
    for (std::size_t i = 0; i < host.size(); ++i)
      out.data()[i] = static_cast<typename B::accum_type>(as_double(host.data()[i]));
    return out;
  }
}

// Host values in the accumulation type (a gradient the host computed) as an activation of B:
// the tensor itself on a CPU backend (where the two types are one), rounded to the value
// type on the device otherwise.
template <class B>
Activation<B> activation_from_host(B& backend, const Tensor<typename B::accum_type, 3>& host) {
  if constexpr (host_memory<B>) {
    static_assert(std::is_same_v<typename B::accum_type, typename B::value_type>);
    (void)backend;
    return host;
  } else {
    using A = typename B::accum_type;
    Activation<B> out(backend, host.shape());
    if (host.size() == 0) return out;
    const DeviceArray<B, A> staged = to_backend(backend, std::span<const A>(host.data(), host.size()));
    backend.template cast<A, typename B::value_type>(staged.data(), out.data(), host.size());
    return out;
  }
}

// Throws unless `t` has exactly `shape`; `what` names the tensor in the message.
template <class B, std::size_t N>
void require_shape(const DeviceTensor<B, N>& t, const std::array<std::size_t, N>& shape, const char* what) {
  if (t.shape() != shape) fail(what, ": expected shape ", shape_string(shape), ", got ", shape_string(t.shape()));
}
using rlxf::require_shape;

// Bytes held by the given containers (tensors, arrays, vectors): what a layer's cache keeps
// for the backward, as the caches' bytes() count it.
template <class... Containers>
std::size_t held_bytes(const Containers&... c) {
  return ((c.size() * sizeof(typename Containers::value_type)) + ... + std::size_t{0});
}

}  // namespace rlxf::nn
