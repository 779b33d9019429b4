// cuda::Backend<cuda::Gpu> (include/rlxf/cuda/gpu.hpp) from a host-compiler translation unit:
// it models the Backend concept, and constructing it is where a missing GPU or driver is
// reported: an rlxf::Error saying "no usable GPU", the runtime's error, and the CPU-backend
// hint. With a GPU, the host-side parts (allocation, zero-filled buffers, bf16 upload and
// download) run; the ops launch kernels and are compiled by nvcc (tests/cuda/kernels/backend.cu).
#include <doctest/doctest.h>

#include <string>
#include <type_traits>
#include <vector>

#include "rlxf/concepts.hpp"
#include "rlxf/core/dtype.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/cuda/gpu.hpp"
#include "rlxf/cuda/runtime.hpp"
#include "../error_of.hpp"

namespace {

using GpuBackend = rlxf::cuda::Backend<rlxf::cuda::Gpu>;

using rlxf::test::error_of;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("cuda::Backend<cuda::Gpu> models Backend, with bf16 storage and device buffers") {
  static_assert(rlxf::Backend<GpuBackend>);
  static_assert(std::is_same_v<GpuBackend::value_type, rlxf::bf16>);
  static_assert(std::is_same_v<GpuBackend::Buffer<float>, rlxf::cuda::DeviceBuffer<float>>);
  static_assert(!std::is_copy_constructible_v<GpuBackend> && std::is_move_constructible_v<GpuBackend>);
  CHECK(GpuBackend::name() == "cuda");
}

TEST_CASE("constructing cuda::Backend<cuda::Gpu> without a usable GPU throws a clear rlxf::Error") {
  if (rlxf::cuda::device_count() > 0) {
    MESSAGE("a GPU is present: the no-GPU error cannot be observed here");
    return;
  }
  const std::string msg = error_of([] { GpuBackend gpu; });
  INFO(msg);
  CHECK(contains(msg, "no usable GPU"));
  CHECK(contains(msg, "require_device(0)"));
  CHECK(contains(msg, std::string(rlxf::cuda::cpu_fallback_hint)));
  // The same for another ordinal, and for the device alone.
  CHECK(contains(error_of([] { GpuBackend gpu{rlxf::cuda::Gpu(1)}; }), "no usable GPU"));
  CHECK(contains(error_of([] { rlxf::cuda::Gpu device; }), "no usable GPU"));
}

TEST_CASE("with a GPU: buffers start at zero and bf16 uploads round trip") {
  if (rlxf::cuda::device_count() == 0) {
    MESSAGE("no usable GPU: the GPU part of this test (allocation, upload, download) was not run");
    return;
  }
  GpuBackend gpu;
  CHECK(gpu.device().sm_count() > 0);
  auto buf = gpu.allocate<rlxf::bf16>(1000);
  std::vector<float> host(1000, 1.0f);
  gpu.download(buf, host);
  for (float v : host) CHECK(v == 0.0f);
  for (std::size_t i = 0; i < host.size(); ++i) host[i] = 0.25f * float(i) - 100.0f;  // exact in bf16
  gpu.upload(host, buf);
  std::vector<float> back(host.size());
  gpu.download(buf, back);
  CHECK(back == host);
  std::vector<float> wrong(3);
  CHECK_THROWS_AS(gpu.upload(wrong, buf), rlxf::Error);
}
