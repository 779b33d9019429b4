#pragma once
// Shared memory as the emulator hands it to kernels: a typed array view over the block's
// dynamic shared memory whose every access is checked (bounds, races, uninitialised reads;
// see BlockRunner). Kernels use the same spelling on the GPU, where the view is a raw
// pointer (device_context.hpp):
//   auto sA = ctx.template shared<float>(byte_offset, count, "sA");
//   float x = sA[i];   sA[j] = y;   sA[j] += y;
//   ctx.load_matrix_sync(frag, sA.ptr(k), ldm);
//   Vec<f16, 8> v; sA.load(v, i); sA.store(i, v);
// An element reference is a proxy that reads or writes when it is used, so it only exists
// as a temporary: `auto x = sA[i]` does not compile into anything usable (write `float x`).
#include <cstddef>
#include <cstring>

#include "rlxf/cuda/emulate/block.hpp"
#include "rlxf/cuda/numeric.hpp"

namespace rlxf::cuda::emulate {

template <class T>
class SharedArray;

// One element of a SharedArray, as a temporary.
template <class T>
class SharedRef {
 public:
  SharedRef(BlockRunner& block, std::size_t offset, BlockRunner::Access what)
      : block_(block), offset_(offset), what_(what) {}
  SharedRef(const SharedRef&) = delete;

  operator T() && { return read(); }
  SharedRef&& operator=(T v) && {
    write(v);
    return std::move(*this);
  }
  SharedRef&& operator=(SharedRef&& other) && {
    write(std::move(other).read());
    return std::move(*this);
  }
  SharedRef&& operator+=(T v) && { return std::move(*this) = static_cast<T>(read() + v); }
  SharedRef&& operator-=(T v) && { return std::move(*this) = static_cast<T>(read() - v); }
  SharedRef&& operator*=(T v) && { return std::move(*this) = static_cast<T>(read() * v); }

 private:
  T read() {
    block_.shared_read(offset_, sizeof(T), what_);
    T v;
    std::memcpy(&v, block_.shared_base() + offset_, sizeof(T));
    return v;
  }
  void write(T v) {
    block_.shared_write(offset_, sizeof(T), what_);
    std::memcpy(block_.shared_base() + offset_, &v, sizeof(T));
  }
  BlockRunner& block_;
  std::size_t offset_;
  BlockRunner::Access what_;
};

// A position in a SharedArray (a `T*` into shared memory on the GPU): what WMMA loads and
// stores take. Arithmetic is free; each access is bounds-checked against the array.
template <class T>
struct SharedPtr {
  using element_type = T;
  const SharedArray<T>* array;
  long index;
  SharedPtr operator+(long n) const { return {array, index + n}; }
};

template <class T>
class SharedArray {
 public:
  SharedArray(BlockRunner& block, std::size_t byte_offset, long count, const char* name)
      : block_(&block), offset_(byte_offset), count_(count), name_(name) {}

  long size() const { return count_; }
  const char* name() const { return name_; }

  SharedRef<T> operator[](long i) const { return SharedRef<T>(*block_, byte_of(i), {name_, i}); }
  SharedPtr<T> ptr(long i = 0) const { return {this, i}; }

  // N elements from i, one vector access (i must be a multiple of N).
  template <int N>
  void load(Vec<T, N>& v, long i) const {
    check_vector<N>(i);
    block_->shared_read(byte_of(i), sizeof(v), {name_, i});
    std::memcpy(static_cast<void*>(&v), block_->shared_base() + byte_of(i), sizeof(v));
  }
  template <int N>
  void store(long i, const Vec<T, N>& v) const {
    check_vector<N>(i);
    block_->shared_write(byte_of(i), sizeof(v), {name_, i});
    std::memcpy(block_->shared_base() + byte_of(i), &v, sizeof(v));
  }

  // Byte offset of element i in the block's shared memory, after checking the bounds.
  std::size_t byte_of(long i) const {
    if (i < 0 || i >= count_)
      raise(Fault::shared_out_of_bounds, "shared-memory access out of bounds: thread ",
            block_->thread_text(block_->current()), " touches ", name_, "[", i, "] of a ",
            count_, "-element array");
    return offset_ + static_cast<std::size_t>(i) * sizeof(T);
  }
  BlockRunner& block() const { return *block_; }

 private:
  template <int N>
  void check_vector(long i) const {
    byte_of(i + N - 1);
    if (byte_of(i) % sizeof(Vec<T, N>) != 0)
      raise(Fault::misaligned, "misaligned vector access: thread ",
            block_->thread_text(block_->current()), " moves ", sizeof(Vec<T, N>),
            " bytes at ", name_, "[", i, "], byte offset ", byte_of(i), " is not a multiple of ",
            sizeof(Vec<T, N>));
  }
  BlockRunner* block_;
  std::size_t offset_;
  long count_;
  const char* name_;
};

}  // namespace rlxf::cuda::emulate
