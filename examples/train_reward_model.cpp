// train_reward_model: RLXF step 1 on a MONA export. Loads the CSV, splits the labelled rows
// 80/20 (seeded; or by arrangement), trains a byte-level BPE tokenizer and a small BERT-style
// MET / Non-MET classifier from scratch, fits temperature scaling on a validation slice of the
// training side, and prints the held-out metrics and reliability table. On the shipped
// synthetic data it also prints the Bayes-optimal accuracy of the same held-out rows.
//
//   train_reward_model [--data data/mona_synthetic.csv] [--out runs/reward_model]
//                      [--split random|arrangement] [--epochs 4] [--d-model 64] [--layers 2]
//                      [--vocab 4096] [--lr 2e-3] [--batch 32] [--seed 0]
//                      [--objective classification|pairwise]
// --objective pairwise trains a scalar scorer with the Bradley-Terry loss on outcome pairs (a MET
// condition preferred to a Non-MET one of the same country and descriptor) for one epoch, and
// reports held-out pairwise accuracy and the ROC AUC of the scalar reward.
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <rlxf/rlxf.hpp>

using namespace rlxf;

namespace {

struct Options {
  std::string data = std::string(RLXF_SOURCE_DIR) + "/data/mona_synthetic.csv";
  std::string out = "runs/reward_model";
  std::string split = "random";
  std::string objective = "classification";
  std::size_t epochs = 4, d_model = 64, layers = 2, vocab = 4096, batch = 32;
  double lr = 2e-3;
  std::uint64_t seed = 0;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc)
      fail("option ", arg, " needs a value (see the top of examples/train_reward_model.cpp)");
    const std::string v = argv[++i];
    if (arg == "--data") o.data = v;
    else if (arg == "--out") o.out = v;
    else if (arg == "--split") o.split = v;
    else if (arg == "--objective") o.objective = v;
    else if (arg == "--epochs") o.epochs = std::stoul(v);
    else if (arg == "--d-model") o.d_model = std::stoul(v);
    else if (arg == "--layers") o.layers = std::stoul(v);
    else if (arg == "--vocab") o.vocab = std::stoul(v);
    else if (arg == "--batch") o.batch = std::stoul(v);
    else if (arg == "--lr") o.lr = std::stod(v);
    else if (arg == "--seed") o.seed = std::stoull(v);
    else fail("unknown option ", arg);
  }
  if (o.split != "random" && o.split != "arrangement")
    fail("--split must be random or arrangement, got ", o.split);
  if (o.objective != "classification" && o.objective != "pairwise")
    fail("--objective must be classification or pairwise, got ", o.objective);
  return o;
}

// The Bayes-optimal accuracy of the test rows when `table` is the generator's default output
// (the shipped data set); nullopt for any other data.
std::optional<double> bayes_if_shipped(const data::MonaTable& table, std::span<const std::size_t> test) {
  const auto rows = data::generate_mona({});
  if (rows.size() != table.size())
    return std::nullopt;
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (rows[i].record.description != table.records[i].description)
      return std::nullopt;
  return data::bayes_accuracy(rows, test);
}

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  const auto t0 = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };

  const data::MonaTable table = data::load_mona(o.data);
  std::printf("%s\n", table.report.summary().c_str());
  const std::vector<std::size_t> labelled = table.labelled();
  const data::Split outer =
      o.split == "random" ? data::random_split(labelled, 0.2, o.seed)
                          : data::group_split(table.column(&data::MonaRecord::arrangement_number),
                                              labelled, 0.2, o.seed);
  const data::Split inner = data::random_split(outer.train, 0.1, o.seed + 1);  // validation
  std::printf("split (%s): %zu train, %zu validation, %zu held-out\n", o.split.c_str(),
              inner.train.size(), inner.test.size(), outer.test.size());

  // The tokenizer learns from the training rows' texts only.
  std::vector<std::string> corpus;
  for (std::size_t i : inner.train)
    corpus.push_back(data::classifier_text(table.records[i]));
  tokenize::Bpe bpe = tokenize::Bpe::train(corpus, {.vocab_size = o.vocab});
  std::printf("tokenizer: %zu tokens (%zu merges) [%.1f s]\n", bpe.vocab_size(), bpe.merge_count(),
              elapsed());

  const reward::MonaRewardTrainConfig rm_cfg{
      .d_model = o.d_model,
      .layers = o.layers,
      .classifier = {.train = {.epochs = o.epochs, .batch_size = o.batch, .lr = o.lr, .seed = o.seed}},
      .seed = o.seed};

  const bool tty = isatty(fileno(stdout));
  const auto progress = [&](const reward::TrainProgress& p) {
    if (std::isnan(p.val_loss) && !tty)
      return;
    const double rate = p.seconds > 0 ? static_cast<double>(p.step) / p.seconds : 0;
    const double eta = rate > 0 ? static_cast<double>(p.total_steps - p.step) / rate : 0;
    std::printf("%sstep %zu/%zu epoch %.2f train loss %.4f", tty ? "\r" : "", p.step, p.total_steps,
                p.epoch, p.train_loss);
    if (!std::isnan(p.val_loss))
      std::printf(" | validation loss %.4f accuracy %.4f", p.val_loss, p.val_accuracy);
    std::printf(" | %.1f steps/s, ETA %.0f s%s", rate, eta, std::isnan(p.val_loss) ? "" : "\n");
    std::fflush(stdout);
  };
  if (o.objective == "pairwise") {
    // [CLS] text [SEP], as MonaRewardModel::encode does
    const auto encode = [&](const std::string& text) {
      std::vector<std::int32_t> ids{*bpe.cls()};
      const auto body = bpe.encode(text);
      ids.insert(ids.end(), body.begin(), body.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(body.size(), rm_cfg.max_tokens - 2)));
      ids.push_back(*bpe.sep());
      return ids;
    };
    const auto pairs = [&](std::span<const std::size_t> rows, std::uint64_t seed) {
      std::vector<reward::PreferencePair> out;
      for (const auto& p : data::outcome_pairs(table, rows, seed))
        out.push_back({encode(data::classifier_text(table.records[p.chosen])),
                       encode(data::classifier_text(table.records[p.rejected]))});
      return out;
    };
    const auto train_pairs = pairs(inner.train, o.seed), val_pairs = pairs(inner.test, o.seed + 1),
               test_pairs = pairs(outer.test, o.seed + 2);
    Rng scorer_init(o.seed, 2);
    model::SequenceClassifier<float> scorer(rm_cfg.encoder(bpe.vocab_size()), 1, scorer_init);
    const reward::TrainReport report = reward::train_pairwise(
        scorer, train_pairs, val_pairs,
        {.train = {.epochs = 1, .batch_size = o.batch, .lr = o.lr, .eval_every = 100, .seed = o.seed}},
        progress);
    std::vector<const std::vector<std::int32_t>*> chosen, rejected, rows;
    std::vector<std::vector<std::int32_t>> held_out;
    std::vector<std::uint8_t> labels;
    for (std::size_t i : outer.test) {
      held_out.push_back(encode(data::classifier_text(table.records[i])));
      labels.push_back(table.labels[i] == data::Label::met);
    }
    for (const auto& p : test_pairs)
      chosen.push_back(&p.chosen), rejected.push_back(&p.rejected);
    const auto rc = reward::scalar_rewards(scorer, std::span<const std::vector<std::int32_t>* const>(chosen));
    const auto rr = reward::scalar_rewards(scorer, std::span<const std::vector<std::int32_t>* const>(rejected));
    const auto bt = reward::bradley_terry_loss<double>(rc, rr, {}, {}, {});
    for (const auto& ids : held_out)
      rows.push_back(&ids);
    const auto r = reward::scalar_rewards(scorer, std::span<const std::vector<std::int32_t>* const>(rows));
    std::printf("trained %zu steps on %zu pairs in %.1f s\nheld-out pairs: %zu, accuracy %.4f, "
                "mean margin %.3f, loss %.4f\nROC AUC of the scalar reward on the held-out rows: %.4f\n",
                report.steps, train_pairs.size(), report.seconds, test_pairs.size(), bt.accuracy,
                bt.margin, bt.loss, reward::roc_auc_mann_whitney(r, labels));
    return 0;
  }

  auto [rm, fit] = reward::train_mona_reward_model(table, inner.train, inner.test, std::move(bpe), rm_cfg, progress);
  const auto test = reward::mona_examples(rm, table, outer.test);
  std::printf("trained %zu steps in %.1f s%s; kept the weights of validation %zu; temperature %.3f\n",
              fit.report.steps, fit.report.seconds, fit.report.stopped_early ? " (stopped early)" : "",
              fit.report.best + 1, fit.temperature);

  std::vector<std::uint8_t> labels;
  for (const auto& e : test)
    labels.push_back(e.label);
  const std::vector<double> z = reward::met_logits(rm.classifier(), test);
  const auto raw = reward::binary_metrics(reward::met_probabilities(z), labels);
  const auto calibrated = reward::binary_metrics(reward::met_probabilities(z, fit.temperature), labels);
  std::printf("\nheld-out (%zu rows), before temperature scaling: %s\n", test.size(),
              reward::summary_line(raw).c_str());
  std::printf("held-out, after temperature scaling (T = %.3f):\n\n%s\n", fit.temperature,
              reward::to_markdown(calibrated).c_str());
  if (const auto bayes = bayes_if_shipped(table, outer.test))
    std::printf("Bayes-optimal accuracy on these held-out rows: %.4f (reward model %.4f, gap %.2f points)\n",
                *bayes, calibrated.accuracy, 100 * (*bayes - calibrated.accuracy));

  rm.save(o.out);
  std::printf("saved the reward model to %s [total %.1f s]\n", o.out.c_str(), elapsed());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "train_reward_model: %s\n", e.what());
  return 1;
}
