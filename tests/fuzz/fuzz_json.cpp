// libFuzzer target for rlxf's JSON readers: io::parse_json (depth, duplicate keys, NUL bytes),
// the typed getters, Hugging Face config.json (decoder and encoder), the main job's config
// (examples/rlxf_mona_config.hpp: from_json, validate), trainer.json's step and reward.json
// (MonaRewardModel::load, through a file). Rejecting an input with an rlxf::Error is the
// expected outcome for most inputs; a crash, a sanitizer report, a hang or any other exception
// is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "scratch.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/io/json.hpp"
#include "rlxf/model/hf_config.hpp"
#include "rlxf/reward/mona_reward_model.hpp"
#include "rlxf_mona_config.hpp"

namespace {

template <class F>
void expect_rlxf_error_or_success(F f) {
  try {
    f();
  } catch (const rlxf::Error&) {
  }  // any other exception escapes: libFuzzer reports it
}

const std::filesystem::path& scratch() { return rlxf_fuzz::scratch_dir("fuzz_json"); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json j;
  try {
    j = rlxf::io::parse_json(text, "input", {.max_depth = 16, .max_bytes = 1 << 20});
  } catch (const rlxf::Error&) {
    return 0;
  }
  if (j.dump().empty()) std::abort();  // a parsed tree is shallow enough to print
  expect_rlxf_error_or_success([&] { rlxf::model::decoder_config_from_hf(j); });
  expect_rlxf_error_or_success([&] { rlxf::model::encoder_config_from_hf(j); });
  expect_rlxf_error_or_success([&] { rlxf::model::num_labels_from_hf(j); });
  expect_rlxf_error_or_success([&] { rlxf::io::json_require<std::size_t>(j, "step"); });
  expect_rlxf_error_or_success([&] {
    const rlxf_mona::Config c = rlxf_mona::from_json(j);
    rlxf_mona::validate(c, "ppo");
    if (rlxf_mona::from_json(rlxf_mona::to_json(c)).steps != c.steps) std::abort();  // round trip
  });
  expect_rlxf_error_or_success([&] {
    std::ofstream(scratch() / "reward.json", std::ios::binary | std::ios::trunc).write(text.data(), std::streamsize(size));
    rlxf::reward::MonaRewardModel::load(scratch());  // fails later on the missing tokenizer
  });
  return 0;
}
