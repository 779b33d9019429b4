// mona_synthetic: writes a synthetic MONA export (data/synthetic.hpp) and states its figures:
// the MET rate and the Bayes-optimal accuracy on the held-out split that the reward-model
// example uses. The shipped data/mona_synthetic.csv is this program's output with its defaults:
//
//   mona_synthetic [--out data/mona_synthetic.csv] [--rows 20000] [--seed 20240501]
//                  [--split-seed 0] [--test-fraction 0.2]
#include <cstdio>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <rlxf/rlxf.hpp>

using namespace rlxf;

int main(int argc, char** argv) try {
  std::string out = std::string(RLXF_SOURCE_DIR) + "/data/mona_synthetic.csv";
  data::SyntheticConfig cfg;
  std::uint64_t split_seed = 0;
  double test_fraction = 0.2;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc)
      fail("option ", arg, " needs a value (see the top of examples/mona_synthetic.cpp)");
    const std::string value = argv[++i];
    if (arg == "--out")
      out = value;
    else if (arg == "--rows")
      cfg.rows = std::stoul(value);
    else if (arg == "--seed")
      cfg.seed = std::stoull(value);
    else if (arg == "--split-seed")
      split_seed = std::stoull(value);
    else if (arg == "--test-fraction")
      test_fraction = std::stod(value);
    else
      fail("unknown option ", arg, " (expected --out, --rows, --seed, --split-seed or --test-fraction)");
  }

  const std::vector<data::SyntheticRow> rows = data::generate_mona(cfg);
  std::vector<data::MonaRecord> records;
  records.reserve(rows.size());
  for (const auto& r : rows)
    records.push_back(r.record);
  std::ostringstream csv;
  data::write_mona_csv(csv, records);
  const std::string bytes = csv.str();
  io::AtomicFile file(out);  // replaces `out` only once complete
  file.append(std::as_bytes(std::span(bytes)));
  file.commit();

  const std::vector<std::size_t> labelled = data::labelled_rows(rows);
  std::size_t met = 0;
  for (std::size_t i : labelled)
    met += *rows[i].met;
  const data::Split split = data::random_split(labelled, test_fraction, split_seed);
  std::printf("wrote %s: %zu rows, %zu with an outcome (%.1f%% MET), %zu not yet assessed\n",
              out.c_str(), rows.size(), labelled.size(),
              100.0 * static_cast<double>(met) / static_cast<double>(labelled.size()),
              rows.size() - labelled.size());
  std::printf("Bayes-optimal accuracy: held-out %.1f%% split (seed %llu) %.4f, all labelled rows %.4f\n",
              100 * test_fraction, static_cast<unsigned long long>(split_seed),
              data::bayes_accuracy(rows, split.test), data::bayes_accuracy(rows, labelled));
  // Without the program's shock (which no column records) the oracle's p_met is the best a
  // model of the row can know, the cue's hint about the shock aside.
  const data::MonaOracle oracle(cfg.model);
  std::size_t correct = 0;
  for (std::size_t i : split.test) {
    const data::MonaRecord& r = rows[i].record;
    const double p = oracle.p_met(r.country_name, r.arrangement_type, r.economic_descriptor, r.description);
    correct += (p > 0.5) == *rows[i].met;
  }
  std::printf("accuracy of the oracle's p_met without the program shock, held-out split: %.4f\n",
              static_cast<double>(correct) / static_cast<double>(split.test.size()));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "mona_synthetic: %s\n", e.what());
  return 1;
}
