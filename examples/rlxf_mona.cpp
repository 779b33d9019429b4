// rlxf_mona: the whole RLXF pipeline of the paper on a MONA export, on 2 CPU cores or a GPU.
//   1. split the labelled rows 80/20 (seeded); train a byte-level BPE tokenizer on the training side;
//   2. SFT a small GPT-2-style policy on (paper prompt, historical condition description);
//   3. train the MET / Non-MET reward model and print its held-out metrics;
//   4. fine-tune the policy against P(MET) with the chosen algorithm (PPO by default) through
//      train::Trainer, logging metrics.jsonl and checkpointing;
//   5. evaluate tuned vs SFT vs a random policy on held-out prompts (reward, the synthetic
//      oracle's true P(MET), KL, tests) and write report.md with SVG plots.
// Every stage's result is kept in the run folder; re-running resumes where the last run stopped
// (a killed fine-tuning continues from its last checkpoint and ends with the same numbers).
//
//   rlxf_mona [--config file.json] [--run runs/rlxf_mona] [--algorithm ppo] [--device cpu] [--help]
// The JSON config overrides any field of Config below (unknown keys are an error); --help lists
// them with their defaults and allowed ranges. The whole configuration is checked, the data
// file included, before anything is written; the run folder is locked against a second process
// and records the data file's identity, so a changed CSV is refused. --device picks the
// backend of every model (rlxf_mona_pipeline.hpp): cpu, cuda (a GPU, claimed before anything
// is written) or cuda-emulator (the CUDA backend's kernels run by the CPU emulator: the GPU's
// code path, slowly, on a machine without one). A run folder's checkpoints are the same
// whichever backend wrote them, so a run may be resumed on another device. Exit status: 0
// done, 2 a usage or configuration error, 1 any other error.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <rlxf/rlxf.hpp>

#include <rlxf/cuda/attention/configs.hpp>

#include "rlxf_mona_config.hpp"
#include "rlxf_mona_pipeline.hpp"

using namespace rlxf;
using namespace rlxf_mona;
namespace fs = std::filesystem;

namespace {

// What the job is doing, for errors that do not name their file themselves (std::bad_alloc,
// a filesystem error from the standard library).
std::string activity = "reading the command line";

}  // namespace

int main(int argc, char** argv) try {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows up in logs as it happens
  const auto t0 = std::chrono::steady_clock::now();
  fs::path run = "runs/rlxf_mona";
  std::string algorithm = "ppo";
  std::string device = "cpu";
  std::optional<fs::path> config_file;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage().c_str(), stdout);
      return 0;
    }
    if (arg != "--run" && arg != "--algorithm" && arg != "--config" && arg != "--device")
      usage_error("unknown option '", arg, "' (expected --config, --run, --algorithm, --device or --help)");
    if (i + 1 >= argc) usage_error("option ", arg, " needs a value (see --help)");
    const std::string v = argv[++i];
    if (v.empty()) usage_error("option ", arg, " needs a non-empty value");
    if (arg == "--run") run = v;
    else if (arg == "--algorithm") algorithm = v;
    else if (arg == "--device") device = v;
    else config_file = v;
  }
  if (algorithm != "ppo" && algorithm != "dpo" && algorithm != "rs" && algorithm != "grpo" && algorithm != "rloo")
    usage_error("--algorithm must be ppo, dpo, rs, grpo or rloo, got '", algorithm, "'");
  if (device != "cpu" && device != "cuda" && device != "cuda-emulator")
    usage_error("--device must be cpu, cuda or cuda-emulator, got '", printable(device), "'");
  // The GPU is claimed before anything else, so a machine without one stops here, having
  // written nothing.
#if defined(RLXF_MONA_WITH_CUDA)
  std::optional<cuda::Backend<cuda::Gpu>> gpu;
#endif
  if (device == "cuda") {
    activity = "--device cuda";
#if defined(RLXF_MONA_WITH_CUDA)
    with_context("--device cuda", [&] { gpu.emplace(); });
    const cuda::DeviceProperties& p = gpu->device().properties();
    std::printf("device: GPU %d, %s (sm_%d%d, %zu MiB)\n", p.ordinal, p.name.c_str(), p.sm_major, p.sm_minor,
                p.global_mem_bytes >> 20);
#else
    fail("--device cuda: this rlxf_mona was built without CUDA (RLXF_ENABLE_CUDA=OFF); use --device cpu");
#endif
  }

  // The whole configuration, the data file included, is checked before anything is written.
  activity = "reading the configuration";
  const Config cfg = [&] {
    if (!config_file) return Config{};
    try {
      const nlohmann::json overrides = io::read_json(*config_file, {.max_depth = 8, .max_bytes = 1 << 20});
      return with_context(config_file->string(), [&] { return from_json(overrides); });
    } catch (const UsageError&) {
      throw;
    } catch (const Error& e) {
      usage_error(e.what());
    }
  }();
  try {
    with_context(config_file ? config_file->string() : "the default configuration", [&] {
      validate(cfg, algorithm);
      if (device != "cpu") validate_cuda_shapes(cfg, cuda::attention::shipped_head_dims);
    });
  } catch (const Error& e) {
    usage_error(e.what());
  }
  activity = "checking the data file " + cfg.data;
  const io::FileIdentity data_identity = [&] {
    try {
      return io::identify_file(cfg.data);
    } catch (const Error& e) {
      usage_error("field 'data': ", e.what());
    }
  }();
  const nlohmann::json data_record{{"path", cfg.data}, {"size", data_identity.size}, {"fnv1a", data_identity.hash_hex()}};

  activity = "opening the run folder " + run.string();
  if (fs::exists(run) && !fs::is_directory(run)) usage_error("--run ", run.string(), " exists and is not a folder");
  const train::RunLock lock(run);  // one process per run folder
  const nlohmann::json effective = to_json(cfg);
  const bool fresh = !fs::exists(run / "config.json");
  if (!fresh) {  // a run folder belongs to one configuration and one data file
    if (io::read_json(run / "config.json") != effective)
      usage_error(run / "config.json", " differs from this run's configuration: use another --run folder");
    if (fs::exists(run / "data.json") && io::read_json(run / "data.json") != data_record)
      usage_error(cfg.data, " (", data_identity.describe(), ") is not the file this run folder was made from (",
                  run / "data.json", "): use another --run folder");
  }
  std::printf("run folder %s (algorithm %s, seed %llu)\n", run.c_str(), algorithm.c_str(),
              static_cast<unsigned long long>(cfg.seed));

  // 1. Data, splits, tokenizer.
  activity = "loading " + cfg.data;
  const data::MonaTable table = data::load_mona(cfg.data);
  if (io::identify_file(cfg.data) != data_identity) fail(cfg.data, " changed while it was being read");
  std::printf("%s\n", table.report.summary().c_str());
  if (fresh) {  // now known to be valid: the folder records what it is made of
    eval::write_text_file(run / "config.json", effective.dump(2) + "\n");
    eval::write_text_file(run / "data.json", data_record.dump(2) + "\n");
  } else if (!fs::exists(run / "data.json")) {
    eval::write_text_file(run / "data.json", data_record.dump(2) + "\n");
  }
  const data::Split outer = data::random_split(table.labelled(), 0.2, cfg.seed);
  const data::Split inner = data::random_split(outer.train, 0.1, cfg.seed + 1);
  activity = "preparing the tokenizer in " + (run / "tokenizer").string();
  tokenize::Bpe bpe = [&] {
    // Bpe::save writes special_tokens_map.json last: without it a save was cut short (the
    // tokenizer is trained again, identically, from the same rows).
    if (fs::exists(run / "tokenizer" / "special_tokens_map.json"))
      return tokenize::Bpe::load(fs::path(run / "tokenizer"));
    std::vector<std::string> corpus;
    for (std::size_t i : outer.train) {
      corpus.push_back(prompt_of(table, i));
      corpus.push_back(data::classifier_text(table.records[i]));
    }
    tokenize::Bpe b = tokenize::Bpe::train(corpus, {.vocab_size = cfg.vocab});
    b.save(run / "tokenizer");
    return b;
  }();
  std::printf("tokenizer: %zu tokens [%.0f s]\n", bpe.vocab_size(), seconds_since(t0));

  Job job{.cfg = cfg,
          .algorithm = algorithm,
          .run = run,
          .table = &table,
          .outer = outer,
          .inner = inner,
          .bpe = &bpe,
          .t0 = t0,
          .activity = &activity};
  if (device == "cpu")
    run_stages<cpu::Backend<float>>(job);
  else if (device == "cuda-emulator")
    run_on_emulator(job);
#if defined(RLXF_MONA_WITH_CUDA)
  else
    run_on_gpu(job, *gpu);
#endif
  return 0;
} catch (const UsageError& e) {
  std::fprintf(stderr, "rlxf_mona: %s\n", e.what());
  return 2;
} catch (const Error& e) {
  std::fprintf(stderr, "rlxf_mona: %s\n", e.what());
  return 1;
} catch (const std::exception& e) {  // not rlxf's: say what was being done
  std::fprintf(stderr, "rlxf_mona: %s: %s\n", escape_control(activity).c_str(), escape_control(e.what()).c_str());
  return 1;
}
