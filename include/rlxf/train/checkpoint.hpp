#pragma once
// Run checkpoints: a directory per checkpoint under <run>/checkpoints/, written completely
// before <run>/checkpoints/latest (a one-line file, replaced atomically) names it, so a crash
// at any moment leaves the previous checkpoint intact and findable. Older checkpoints beyond
// `keep` are removed only after `latest` points at the new one.
//
//   <run>/checkpoints/step-000040/policy.safetensors   every parameter by name (F32)
//   <run>/checkpoints/step-000040/algorithm.safetensors  optimizer moments + JSON state
//   <run>/checkpoints/step-000040/trainer.json           {"step": 40}
#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlxf/core/error.hpp"
#include "rlxf/core/parameter.hpp"
#include "rlxf/core/tensor.hpp"
#include "rlxf/io/safetensors.hpp"
#include "rlxf/nn/parameter.hpp"

namespace rlxf::train {

// Writes every parameter (host or device: its master values) under its name, as F32,
// atomically. The file is the same whichever backend holds the parameters.
template <class P>
void save_parameters(const std::filesystem::path& path, const std::vector<BasicParameterRef<P>>& params) {
  io::SafetensorsWriter w;
  for (const auto& ref : params) {
    const auto values = nn::values_of(*ref.param);
    w.add(ref.name, std::span<const typename decltype(values)::value_type>(values), nn::shape_of(*ref.param),
          DType::f32);
  }
  w.write(path);
}

// Reads every parameter by name; the file must hold exactly these names with these shapes.
// Every tensor is checked and read before any parameter changes: a failed load leaves the
// parameters as they were.
template <class P>
void load_parameters(const std::filesystem::path& path, const std::vector<BasicParameterRef<P>>& params) {
  using T = typename nn::parameter_traits<P>::accum_type;
  with_context("loading parameters " + path.string(), [&] {
    const io::Safetensors file = io::Safetensors::load(path);
    std::vector<std::vector<T>> data;
    data.reserve(params.size());
    for (const auto& ref : params) {
      data.push_back(with_context("tensor '" + ref.name + "'", [&] {
        const auto* info = file.find(ref.name);
        if (!info)
          fail("missing");
        const std::vector<std::size_t> want = nn::shape_of(*ref.param);
        if (info->shape != want)
          fail("shape ", shape_string(info->shape), ", the model's is ", shape_string(want));
        return file.read<T>(ref.name);
      }));
    }
    // Every parameter was found: a count mismatch means tensors the model does not have.
    RLXF_REQUIRE(file.tensors().size() == params.size(), "the file has ", file.tensors().size(),
                 " tensors, the model ", params.size());
    for (std::size_t i = 0; i < params.size(); ++i)
      nn::set_values(*params[i].param, std::span<const T>(data[i]));
  });
}

class CheckpointDir {
 public:
  explicit CheckpointDir(std::filesystem::path run_dir, std::size_t keep = 2)
      : root_(std::move(run_dir) / "checkpoints"), keep_(keep) {
    RLXF_REQUIRE(keep_ >= 1, "CheckpointDir: keep must be >= 1");
  }

  // The directory of the newest complete checkpoint, if any.
  std::optional<std::filesystem::path> latest() const {
    std::ifstream in(root_ / "latest");
    std::string name;
    if (!in || !std::getline(in, name) || name.empty())
      return std::nullopt;
    const auto dir = root_ / name;
    if (!std::filesystem::is_directory(dir))
      fail(root_ / "latest", " names ", name, ", which does not exist");
    return dir;
  }

  // The checkpoints a resume may try, newest first: the one `latest` names, then the older
  // complete ones (kept by `keep`), so that a corrupt newest checkpoint has a fallback. A
  // directory newer than `latest` is the leftover of a crash before its commit and is skipped.
  std::vector<std::filesystem::path> candidates() const {
    const auto newest = latest();
    if (!newest)
      return {};
    std::vector<std::filesystem::path> out{*newest};
    std::vector<std::filesystem::path> older;
    for (const auto& e : std::filesystem::directory_iterator(root_))
      if (e.is_directory() && e.path().filename().string().starts_with("step-") &&
          e.path().filename() < newest->filename())
        older.push_back(e.path());
    std::sort(older.rbegin(), older.rend());
    out.insert(out.end(), older.begin(), older.end());
    return out;
  }

  // A fresh directory for step `step`: fill it, then call commit(step).
  std::filesystem::path prepare(std::size_t step) const {
    const auto dir = root_ / name_of(step);
    std::filesystem::remove_all(dir);  // a leftover from a crash before its commit
    std::filesystem::create_directories(dir);
    return dir;
  }

  void commit(std::size_t step) const {
    const std::string text = name_of(step) + "\n";
    io::AtomicFile file(root_ / "latest");
    file.append(std::as_bytes(std::span(text)));
    file.commit();
    std::vector<std::filesystem::path> dirs;
    for (const auto& e : std::filesystem::directory_iterator(root_))
      if (e.is_directory() && e.path().filename().string().starts_with("step-"))
        dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    while (dirs.size() > keep_) {
      if (dirs.front().filename() != name_of(step))
        std::filesystem::remove_all(dirs.front());
      dirs.erase(dirs.begin());
    }
  }

  static std::string name_of(std::size_t step) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "step-%06zu", step);
    return buf;
  }

 private:
  std::filesystem::path root_;
  std::size_t keep_;
};

}  // namespace rlxf::train
