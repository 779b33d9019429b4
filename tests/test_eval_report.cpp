// rlxf::eval report helpers: XML escaping, nice 1-2-5 axis ticks, the SVG line plot
// (well-formed by a small XML checker, escaped names, ticks covering the data, NaN breaking
// the line, empty input), Markdown tables and the atomic file writer.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "error_of.hpp"
#include "rlxf/eval/report.hpp"

using namespace rlxf::eval;
using rlxf::test::error_of;
namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::size_t count(const std::string& s, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t p = s.find(part); p != std::string::npos; p = s.find(part, p + part.size())) ++n;
  return n;
}

// A small XML well-formedness check: one root element, tags balanced and properly nested,
// attribute values quoted, no raw '<' in text or attributes, every '&' starting one of the
// five predefined entities or a character reference. Returns "" or the first problem.
std::string xml_problem(const std::string& doc) {
  std::vector<std::string> stack;
  std::size_t roots = 0;
  auto check_entities = [](const std::string& text) -> std::string {
    for (std::size_t i = text.find('&'); i != std::string::npos; i = text.find('&', i + 1)) {
      const std::size_t semi = text.find(';', i);
      if (semi == std::string::npos) return "unterminated entity";
      const std::string ent = text.substr(i + 1, semi - i - 1);
      if (ent != "amp" && ent != "lt" && ent != "gt" && ent != "quot" && ent != "apos" &&
          !(ent.size() > 1 && ent[0] == '#'))
        return "unknown entity &" + ent + ";";
    }
    return "";
  };
  std::size_t i = 0;
  while (i < doc.size()) {
    const std::size_t lt = doc.find('<', i);
    const std::string text = doc.substr(i, lt == std::string::npos ? std::string::npos : lt - i);
    if (auto p = check_entities(text); !p.empty()) return p;
    if (lt == std::string::npos) break;
    if (doc.compare(lt, 5, "<?xml") == 0) {
      const std::size_t end = doc.find("?>", lt);
      if (end == std::string::npos) return "unterminated declaration";
      i = end + 2;
      continue;
    }
    const std::size_t gt = doc.find('>', lt);
    if (gt == std::string::npos) return "unterminated tag";
    std::string tag = doc.substr(lt + 1, gt - lt - 1);
    if (tag.find('<') != std::string::npos) return "'<' inside a tag";
    const bool closing = !tag.empty() && tag[0] == '/';
    const bool self_closing = !tag.empty() && tag.back() == '/';
    if (closing) tag = tag.substr(1);
    if (self_closing) tag.pop_back();
    const std::size_t name_end = tag.find_first_of(" \t\n");
    const std::string name = tag.substr(0, name_end);
    if (name.empty()) return "empty tag name";
    // Attributes: name="value" pairs.
    std::string rest = name_end == std::string::npos ? "" : tag.substr(name_end);
    for (std::size_t k = 0; k < rest.size();) {
      if (rest[k] == ' ' || rest[k] == '\n' || rest[k] == '\t') {
        ++k;
        continue;
      }
      const std::size_t eq = rest.find('=', k);
      if (eq == std::string::npos || eq + 1 >= rest.size() || rest[eq + 1] != '"') return "unquoted attribute in <" + name + ">";
      const std::size_t close = rest.find('"', eq + 2);
      if (close == std::string::npos) return "unterminated attribute in <" + name + ">";
      if (auto p = check_entities(rest.substr(eq + 2, close - eq - 2)); !p.empty()) return p;
      k = close + 1;
    }
    if (closing) {
      if (stack.empty() || stack.back() != name) return "unbalanced </" + name + ">";
      stack.pop_back();
    } else if (!self_closing) {
      if (stack.empty()) ++roots;
      stack.push_back(name);
    } else if (stack.empty()) {
      ++roots;
    }
    i = gt + 1;
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  if (roots != 1) return "expected one root element, found " + std::to_string(roots);
  return "";
}

// The texts of elements <text class="cls" ...>TEXT</text>, in order.
std::vector<std::string> texts_of_class(const std::string& svg, const std::string& cls) {
  std::vector<std::string> out;
  const std::string open = "<text class=\"" + cls + "\"";
  for (std::size_t p = svg.find(open); p != std::string::npos; p = svg.find(open, p + 1)) {
    const std::size_t start = svg.find('>', p) + 1;
    out.push_back(svg.substr(start, svg.find("</text>", start) - start));
  }
  return out;
}

// The d attributes of every <path>.
std::vector<std::string> paths(const std::string& svg) {
  std::vector<std::string> out;
  for (std::size_t p = svg.find("<path d=\""); p != std::string::npos; p = svg.find("<path d=\"", p + 1)) {
    const std::size_t start = p + 9;
    out.push_back(svg.substr(start, svg.find('"', start) - start));
  }
  return out;
}

// True when step is 1, 2 or 5 times a power of ten.
bool one_two_five(double step) {
  const double e = std::floor(std::log10(step));
  const double m = step / std::pow(10.0, e);
  for (double c : {1.0, 2.0, 5.0, 10.0})
    if (std::abs(m - c) < 1e-9 * c) return true;
  return false;
}

}  // namespace

TEST_CASE("xml_escape and markdown_cell") {
  CHECK(xml_escape("a<b & \"c\" 'd' > e") == "a&lt;b &amp; &quot;c&quot; &apos;d&apos; &gt; e");
  CHECK(xml_escape(std::string("x\x01y\tz\n")) == "x y\tz\n");
  CHECK(xml_escape("P(MET) \xe2\x89\xa5 0.5") == "P(MET) \xe2\x89\xa5 0.5");  // UTF-8 unchanged
  CHECK(markdown_cell("a|b") == "a\\|b");
  CHECK(markdown_cell("a\\|b") == "a\\\\\\|b");  // a backslash, then the escaped pipe
  CHECK(markdown_cell("one\ntwo\r\nthree\rfour") == "one<br>two<br>three<br>four");
  CHECK(markdown_cell("**bold** `code`") == "**bold** `code`");
}

TEST_CASE("markdown_table: header, alignment, escaping, padding") {
  const std::string t = markdown_table({"policy", "mean R", "note"},
                                       {{"tuned", "0.81", "a|b"}, {"SFT", "0.62"}},
                                       {Align::left, Align::right, Align::center});
  CHECK(t ==
        "| policy | mean R | note |\n"
        "|:---|---:|:---:|\n"
        "| tuned | 0.81 | a\\|b |\n"
        "| SFT | 0.62 |  |\n");
  const std::string plain = markdown_table({"x"}, {});
  CHECK(plain == "| x |\n|---|\n");
  CHECK(contains(error_of([] { markdown_table({}, {}); }), "at least one column"));
  CHECK(contains(error_of([] { markdown_table({"a"}, {{"1", "2"}}); }), "row 0 has 2 cells, the header 1"));
}

TEST_CASE("number formatting") {
  CHECK(format_number(0.123456) == "0.1235");
  CHECK(format_number(kNaN) == "n/a");
  CHECK(format_number(-INFINITY) == "-inf");
  CHECK(format_number(2.0, 1) == "2.0");
  CHECK(format_p_value(0.04321) == "0.0432");
  CHECK(format_p_value(3.21e-11) == "3.2e-11");
  CHECK(format_p_value(0.0) == "0");
  CHECK(format_interval({0.5, 0.25, 0.75, 0.95}, 2) == "[0.25, 0.75]");
}

TEST_CASE("nice_ticks: 1-2-5 steps covering the range") {
  struct Range {
    double lo, hi;
  };
  for (const Range r : {Range{0, 1}, Range{0, 0.87}, Range{-3.2, 7.9}, Range{0, 1000}, Range{2e-5, 3.7e-5},
                        Range{1e6, 1e6 + 3}, Range{-0.013, -0.011}, Range{0, 37}, Range{0.1, 0.30000000000000004},
                        Range{5, 5}, Range{0, 0}, Range{-1e12, 4e12}}) {
    const AxisTicks t = nice_ticks(r.lo, r.hi, 5);
    CAPTURE(r.lo);
    CAPTURE(r.hi);
    REQUIRE(t.values.size() >= 2);
    CHECK(t.values.size() <= 8);
    CHECK(one_two_five(t.step));
    CHECK(t.values.front() <= r.lo + 1e-9 * t.step);
    CHECK(t.values.back() >= r.hi - 1e-9 * t.step);
    for (std::size_t i = 0; i < t.values.size(); ++i) {
      const double k = t.values[i] / t.step;
      CHECK(std::abs(k - std::round(k)) < 1e-9);  // a multiple of the step
      if (i > 0) CHECK(t.values[i] - t.values[i - 1] == doctest::Approx(t.step).epsilon(1e-9));
    }
  }
  const AxisTicks unit = nice_ticks(0, 1, 5);
  CHECK(unit.step == doctest::Approx(0.2));
  CHECK(unit.values.size() == 6);
  CHECK(format_tick(unit.values[3], unit) == "0.6");  // 3 * 0.2 printed without noise
  const AxisTicks k = nice_ticks(0, 37, 5);
  CHECK(k.step == 10.0);
  CHECK(format_tick(k.values.back(), k) == "40");
  CHECK(contains(error_of([] { nice_ticks(1, 0); }), "not a finite interval"));
  CHECK(contains(error_of([] { nice_ticks(0, kNaN); }), "not a finite interval"));
}

TEST_CASE("svg_line_plot: well-formed, escaped, ticks cover the data, legend") {
  PlotSpec spec{.title = "Reward & KL <per step>", .x_label = "step", .y_label = "mean \"reward\""};
  spec.series.push_back({.name = "tuned <PPO> & co", .x = {0, 10, 20, 30, 40}, .y = {0.1, 0.35, 0.5, 0.62, 0.7}});
  spec.series.push_back({.name = "SFT 'base'", .x = {0, 40}, .y = {0.1, 0.1}});
  spec.series.push_back({.name = "random", .x = {0, 20, 40}, .y = {-0.2, -0.25, -0.22}, .color = "#000000"});
  const std::string svg = svg_line_plot(spec);
  INFO(svg);
  CHECK(xml_problem(svg) == "");
  CHECK(contains(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
  CHECK(contains(svg, "<title>Reward &amp; KL &lt;per step&gt;</title>"));
  CHECK(contains(svg, ">tuned &lt;PPO&gt; &amp; co</text>"));
  CHECK(contains(svg, ">SFT &apos;base&apos;</text>"));
  CHECK(contains(svg, ">mean &quot;reward&quot;</text>"));
  CHECK(!contains(svg, "<PPO>"));
  CHECK(count(svg, "<path d=") == 3);
  CHECK(contains(svg, "stroke=\"#000000\""));
  CHECK(contains(svg, "stroke=\"#1f77b4\""));

  // Tick labels: 1-2-5 steps, covering [0, 40] and [-0.25, 0.7].
  const auto xt = texts_of_class(svg, "xtick"), yt = texts_of_class(svg, "ytick");
  REQUIRE(xt.size() >= 2);
  REQUIRE(yt.size() >= 2);
  CHECK(std::stod(xt.front()) <= 0.0);
  CHECK(std::stod(xt.back()) >= 40.0);
  CHECK(std::stod(yt.front()) <= -0.25);
  CHECK(std::stod(yt.back()) >= 0.7);
  for (const auto* labels : {&xt, &yt}) {
    const double step = std::stod((*labels)[1]) - std::stod((*labels)[0]);
    CHECK(one_two_five(step));
    for (std::size_t i = 1; i < labels->size(); ++i)
      CHECK(std::stod((*labels)[i]) - std::stod((*labels)[i - 1]) == doctest::Approx(step));
  }

  // y_min / y_max extend the axis (e.g. P(MET) on [0, 1]).
  PlotSpec prob{.title = "oracle P(MET)"};
  prob.series.push_back({.name = "tuned", .x = {1, 2, 3}, .y = {0.4, 0.45, 0.5}});
  prob.y_min = 0.0;
  prob.y_max = 1.0;
  const auto pt = texts_of_class(svg_line_plot(prob), "ytick");
  CHECK(pt.front() == "0.0");
  CHECK(pt.back() == "1.0");
}

TEST_CASE("svg_line_plot: NaN breaks the line, isolated points get dots") {
  PlotSpec spec{.title = "gaps"};
  spec.series.push_back({.name = "kl", .x = {0, 1, 2, 3, 4, 5, 6}, .y = {1, 2, kNaN, 3, 4, kNaN, 5}});
  spec.series.push_back({.name = "inf x", .x = {0, INFINITY, 2}, .y = {1, 1, 1}});
  const std::string svg = svg_line_plot(spec);
  CHECK(xml_problem(svg) == "");
  const auto d = paths(svg);
  REQUIRE(d.size() == 2);
  // Points 0-1, 3-4 and the lone 6: three pieces, three moves, two line segments.
  CHECK(count(d[0], "M") == 3);
  CHECK(count(d[0], "L") == 2);
  CHECK(!contains(d[0], "nan"));
  CHECK(count(d[1], "M") == 2);
  CHECK(count(d[1], "L") == 0);
  // Isolated points (6 of the first series, both of the second) are drawn as dots.
  CHECK(count(svg, "<circle") == 3);

  spec.markers = true;
  CHECK(count(svg_line_plot(spec), "<circle") == 5 + 2);
}

TEST_CASE("svg_line_plot: empty series, no data, errors") {
  PlotSpec spec{.title = "nothing yet", .x_label = "step", .y_label = "reward"};
  const std::string none = svg_line_plot(spec);
  CHECK(xml_problem(none) == "");
  CHECK(contains(none, "no data"));
  spec.series.push_back({.name = "empty"});
  spec.series.push_back({.name = "all NaN", .x = {1, 2}, .y = {kNaN, kNaN}});
  const std::string empty = svg_line_plot(spec);
  CHECK(xml_problem(empty) == "");
  CHECK(contains(empty, "no data"));
  CHECK(contains(empty, ">empty</text>"));  // still in the legend
  CHECK(paths(empty).empty());

  // One point: a dot, and a widened axis around it.
  PlotSpec one{.title = "one"};
  one.series.push_back({.name = "p", .x = {3}, .y = {0.5}});
  const std::string s1 = svg_line_plot(one);
  CHECK(xml_problem(s1) == "");
  CHECK(count(s1, "<circle") == 1);

  PlotSpec bad;
  bad.series.push_back({.name = "s", .x = {1, 2}, .y = {1}});
  CHECK(contains(error_of([&] { svg_line_plot(bad); }), "series s has 2 x values but 1 y values"));
  PlotSpec tiny{.width = 50};
  CHECK(contains(error_of([&] { svg_line_plot(tiny); }), "too small"));
}

TEST_CASE("write_text_file: atomic replace, errors name the path") {
  const fs::path dir = fs::temp_directory_path() / "rlxf_test_eval_report";
  fs::create_directories(dir);
  const fs::path file = dir / "report.md";
  write_text_file(file, "first\n");
  write_text_file(file, "# Report\n\n| a |\n|---|\n| 1 |\n");
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  CHECK(ss.str() == "# Report\n\n| a |\n|---|\n| 1 |\n");
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  CHECK(entries == 1);  // no temporary file left behind
  const fs::path missing = dir / "no_such_dir" / "x.svg";
  const std::string err = error_of([&] { write_text_file(missing, "x"); });
  CHECK(contains(err, "writing " + missing.string()));
  fs::remove_all(dir);
}
