// libFuzzer target for the checkpoint loaders: the input, as a file, is loaded as a parameters
// file (train::load_parameters into two small tensors) and as algorithm state
// (algo::AlgorithmState::load: optimizer moments and JSON metadata). An rlxf::Error is the
// expected outcome for most inputs; a crash, a sanitizer report or another exception is a
// finding, and so is a failed load_parameters that changed the parameters.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "scratch.hpp"
#include "rlxf/algo/algorithm.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/core/parameter.hpp"
#include "rlxf/train/checkpoint.hpp"

namespace {

const std::filesystem::path& file() {
  static const std::filesystem::path path = rlxf_fuzz::scratch_dir("fuzz_checkpoint") / "checkpoint.safetensors";
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::ofstream(file(), std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  rlxf::Parameter<float> w({2, 3}), b({3});
  std::fill(w.value.begin(), w.value.end(), 7.0f);
  std::fill(b.value.begin(), b.value.end(), 7.0f);
  const rlxf::ParameterList<float> params{{"w", &w}, {"b", &b}};
  try {
    rlxf::train::load_parameters(file(), params);
  } catch (const rlxf::Error&) {
    const auto unchanged = [](const auto& v) { return std::all_of(v.begin(), v.end(), [](float x) { return x == 7.0f; }); };
    if (!unchanged(w.value) || !unchanged(b.value)) std::abort();
  }
  try {
    rlxf::algo::AlgorithmState::load(file());
  } catch (const rlxf::Error&) {
  }
  return 0;
}
