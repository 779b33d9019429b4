#pragma once
// Report helpers for alignment evaluation: an SVG line-plot writer (reward, KL and oracle
// score over training steps), Markdown tables, number formatting, and an atomic text-file
// writer. Plain functions from data to text; nothing here runs a policy.
//
//   rlxf::eval::PlotSpec spec{.title = "Reward over steps", .x_label = "step", .y_label = "mean reward"};
//   spec.series.push_back({.name = "tuned", .x = steps, .y = reward});
//   spec.series.push_back({.name = "SFT base", .x = steps, .y = base_reward});
//   rlxf::eval::write_text_file("run/reward.svg", rlxf::eval::svg_line_plot(spec));
//
// The plot: axes with "nice" ticks (steps of 1, 2 or 5 times a power of ten, the first
// tick at or below the smallest value, the last at or above the largest), light grid lines,
// one polyline per series drawn in the order of its points, a non-finite x or y (NaN, inf)
// ending the line (the next finite point starts a new piece), a dot for a point with no
// finite neighbour, and a legend to the right of the plot. Every text is XML-escaped. A plot
// with no finite point at all shows its axes on [0, 1] and the words "no data".
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/eval/statistics.hpp"
#include "rlxf/io/safetensors.hpp"

namespace rlxf::eval {

// ---------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------

// `text` with &, <, >, " and ' replaced by entities, so it is safe as XML character data
// and inside attribute values. Control characters that XML 1.0 forbids (below U+0020 except
// tab, newline and carriage return) become spaces. UTF-8 passes through unchanged.
inline std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: {
        const auto u = static_cast<unsigned char>(ch);
        out += (u < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') ? ' ' : ch;
      }
    }
  }
  return out;
}

// v with `digits` decimals ("%.*f"), "n/a" for NaN, "inf" / "-inf" for infinities.
inline std::string format_number(double v, int digits = 4) {
  if (std::isnan(v)) return "n/a";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// A p-value for a table: "0.0123" (4 decimals) from 1e-4 up, "3.2e-11" below, "0" for an
// exact 0 (e.g. a zero-variance test), "n/a" for NaN.
inline std::string format_p_value(double p) {
  if (std::isnan(p)) return "n/a";
  if (p == 0) return "0";
  if (p >= 1e-4) return format_number(p, 4);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1e", p);
  return buf;
}

// "[lower, upper]" with `digits` decimals.
inline std::string format_interval(const ConfidenceInterval& ci, int digits = 4) {
  return "[" + format_number(ci.lower, digits) + ", " + format_number(ci.upper, digits) + "]";
}

// ---------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------

enum class Align { none, left, center, right };

// One table cell: the text with every backslash doubled and every | escaped as \| (so a
// cell can neither end early nor swallow the next delimiter; GitHub-flavoured Markdown shows
// both characters as written), line breaks (\n, \r\n, \r) as <br>. Other Markdown stays
// active (**bold**, `code`).
inline std::string markdown_cell(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (ch == '\\') out += "\\\\";
    else if (ch == '|') out += "\\|";
    else if (ch == '\r') {
      out += "<br>";
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else if (ch == '\n') out += "<br>";
    else out += ch;
  }
  return out;
}

// A GitHub-flavoured Markdown table: the header row, the delimiter row (--- / :--- / :---: /
// ---: for `align`, none when `align` is shorter than the header) and one line per row,
// cells escaped by markdown_cell. A row shorter than the header is padded with empty cells;
// a longer one, or an empty header, throws.
inline std::string markdown_table(const std::vector<std::string>& header,
                                  const std::vector<std::vector<std::string>>& rows,
                                  const std::vector<Align>& align = {}) {
  RLXF_REQUIRE(!header.empty(), "a table needs at least one column");
  const std::size_t cols = header.size();
  // Appended piece by piece: `" " + std::string` trips GCC 12's false -Wrestrict positive.
  std::string s = "|";
  for (const auto& h : header) {
    s += ' ';
    s += markdown_cell(h);
    s += " |";
  }
  s += "\n|";
  for (std::size_t c = 0; c < cols; ++c) {
    switch (c < align.size() ? align[c] : Align::none) {
      case Align::none: s += "---|"; break;
      case Align::left: s += ":---|"; break;
      case Align::center: s += ":---:|"; break;
      case Align::right: s += "---:|"; break;
    }
  }
  s += "\n";
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].size() > cols)
      fail("markdown_table: row ", r, " has ", rows[r].size(), " cells, the header ", cols);
    s += "|";
    for (std::size_t c = 0; c < cols; ++c) {
      s += ' ';
      if (c < rows[r].size()) s += markdown_cell(rows[r][c]);
      s += " |";
    }
    s += "\n";
  }
  return s;
}

// ---------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------

// Writes `text` to `path` atomically (io::AtomicFile: a temporary file in the same
// directory, fsync, rename): readers see the old file or the whole new one, never a part.
// The directory must exist. Errors name the path.
inline void write_text_file(const std::filesystem::path& path, std::string_view text) {
  with_context("writing " + path.string(), [&] {
    io::AtomicFile file(path);
    file.append(std::as_bytes(std::span(text.data(), text.size())));
    file.commit();
  });
}

// ---------------------------------------------------------------------------------------
// Axis ticks
// ---------------------------------------------------------------------------------------

struct AxisTicks {
  double step = 1;             // 1, 2 or 5 times a power of ten
  std::vector<double> values;  // k * step for consecutive integers k, ascending
  int decimals = 0;            // decimals that print every tick exactly (for fixed notation)
};

// Ticks for data on [lo, hi]: step = the smallest of {1, 2, 5} x 10^e that is at least
// (hi - lo) / target_intervals, ticks from floor(lo / step) step to ceil(hi / step) step, so
// they cover [lo, hi] with at most target_intervals + 2 intervals. An empty range (lo == hi)
// is widened by 10% of |lo| (or by 1 when lo = 0) each side. lo, hi finite, lo <= hi.
inline AxisTicks nice_ticks(double lo, double hi, std::size_t target_intervals = 5) {
  RLXF_REQUIRE(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, "range [", lo, ", ", hi,
               "] is not a finite interval");
  RLXF_REQUIRE(target_intervals >= 1, "target_intervals must be at least 1");
  if (lo == hi) {
    const double pad = lo == 0 ? 1.0 : 0.1 * std::abs(lo);
    lo -= pad;
    hi += pad;
  }
  const double raw = hi / static_cast<double>(target_intervals) - lo / static_cast<double>(target_intervals);
  int e = static_cast<int>(std::floor(std::log10(raw)));
  double base = std::pow(10.0, e);
  double mult = 0;
  for (const double m : {1.0, 2.0, 5.0, 10.0})
    if (m * base >= raw * (1 - 1e-12)) {
      mult = m;
      break;
    }
  if (mult == 0 || mult == 10) {  // raw just below a power of ten, or log10 rounded down
    mult = 1;
    ++e;
    base = std::pow(10.0, e);
  }
  AxisTicks t;
  t.step = mult * base;
  t.decimals = std::max(0, -e);
  // Tolerance of 1e-9 step so that values a rounding away from a tick do not add a tick.
  const double k0 = std::floor(lo / t.step + 1e-9), k1 = std::ceil(hi / t.step - 1e-9);
  for (double k = k0; k <= k1; k += 1) t.values.push_back(k == 0 ? 0.0 : k * t.step);
  return t;
}

// The label of tick value v of `t`: fixed notation with t.decimals decimals, or for very
// large or small steps (outside 1e-4 .. 1e9) scientific notation with enough digits.
inline std::string format_tick(double v, const AxisTicks& t) {
  char buf[64];
  const double mag = std::max(std::abs(t.values.empty() ? v : t.values.front()),
                              std::abs(t.values.empty() ? v : t.values.back()));
  if (t.step >= 1e-4 && mag < 1e9) {
    std::snprintf(buf, sizeof buf, "%.*f", t.decimals, v);
  } else {
    const int digits = mag > 0 ? std::max(0, static_cast<int>(std::floor(std::log10(mag))) -
                                                 static_cast<int>(std::floor(std::log10(t.step))))
                               : 0;
    std::snprintf(buf, sizeof buf, "%.*e", std::min(digits, 16), v);
  }
  return buf;
}

// ---------------------------------------------------------------------------------------
// SVG line plot
// ---------------------------------------------------------------------------------------

// One named line: point i is (x[i], y[i]); x and y have the same length (may be 0).
struct Series {
  std::string name{};
  std::vector<double> x{};
  std::vector<double> y{};
  std::string color{};  // any SVG colour; empty: the next colour of the palette
};

struct PlotSpec {
  std::string title{};
  std::string x_label{};
  std::string y_label{};
  std::vector<Series> series{};
  int width = 720;   // pixels, the whole image (legend included)
  int height = 420;
  // The y axis reaches at least these values (e.g. y_min = 0 for a KL, 0 and 1 for P(MET)).
  std::optional<double> y_min{}, y_max{};
  bool markers = false;  // a dot at every finite point, not only isolated ones
};

namespace report_detail {

// Tableau 10, the default colour cycle of matplotlib.
inline constexpr const char* palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

inline std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

inline bool finite_point(const Series& s, std::size_t i) { return std::isfinite(s.x[i]) && std::isfinite(s.y[i]); }

}  // namespace report_detail

// The SVG document (UTF-8 text, standalone, with an XML declaration) of `spec`; see the
// header comment. Throws when a series' x and y differ in length or the size is too small.
inline std::string svg_line_plot(const PlotSpec& spec) {
  using report_detail::num;
  RLXF_REQUIRE(spec.width >= 200 && spec.height >= 150, "image ", spec.width, " x ", spec.height,
               " is too small (at least 200 x 150)");
  for (const auto& s : spec.series)
    if (s.x.size() != s.y.size())
      fail("svg_line_plot: series ", s.name, " has ", s.x.size(), " x values but ", s.y.size(), " y values");

  // Data range over finite points, widened to y_min / y_max.
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  for (const auto& s : spec.series)
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (report_detail::finite_point(s, i)) {
        x_lo = std::min(x_lo, s.x[i]);
        x_hi = std::max(x_hi, s.x[i]);
        y_lo = std::min(y_lo, s.y[i]);
        y_hi = std::max(y_hi, s.y[i]);
      }
  const bool has_data = x_lo <= x_hi;
  if (!has_data) x_lo = y_lo = 0, x_hi = y_hi = 1;
  if (spec.y_min && std::isfinite(*spec.y_min)) y_lo = std::min(y_lo, *spec.y_min);
  if (spec.y_max && std::isfinite(*spec.y_max)) y_hi = std::max(y_hi, *spec.y_max);
  const AxisTicks xt = nice_ticks(x_lo, x_hi, 6), yt = nice_ticks(y_lo, y_hi, 5);
  const double x0 = std::min(xt.values.front(), x_lo), x1 = std::max(xt.values.back(), x_hi);
  const double y0 = std::min(yt.values.front(), y_lo), y1 = std::max(yt.values.back(), y_hi);

  // Layout: title on top, tick labels and axis labels left and below, legend on the right
  // (about 7 px per character at font size 12).
  std::size_t longest = 0;
  for (const auto& s : spec.series) longest = std::max(longest, s.name.size());
  const double W = spec.width, H = spec.height;
  const double legend_w = spec.series.empty() ? 10.0 : std::min(W / 3, 40.0 + 7.0 * static_cast<double>(longest));
  const double left = 72, right = W - legend_w - 10, top = spec.title.empty() ? 20 : 40, bottom = H - 52;
  const double pw = right - left, ph = bottom - top;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return bottom - (y - y0) / (y1 - y0) * ph; };

  std::string s;
  s += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(spec.width) + "\" height=\"" +
       std::to_string(spec.height) + "\" viewBox=\"0 0 " + std::to_string(spec.width) + " " +
       std::to_string(spec.height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s += "<title>" + xml_escape(spec.title) + "</title>\n";
  s += "<rect x=\"0\" y=\"0\" width=\"" + std::to_string(spec.width) + "\" height=\"" +
       std::to_string(spec.height) + "\" fill=\"white\"/>\n";
  if (!spec.title.empty())
    s += "<text x=\"" + num(left + pw / 2) + "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">" +
         xml_escape(spec.title) + "</text>\n";

  // Grid and ticks.
  s += "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">\n";
  for (double v : xt.values)
    s += "<line x1=\"" + num(px(v)) + "\" y1=\"" + num(top) + "\" x2=\"" + num(px(v)) + "\" y2=\"" + num(bottom) + "\"/>\n";
  for (double v : yt.values)
    s += "<line x1=\"" + num(left) + "\" y1=\"" + num(py(v)) + "\" x2=\"" + num(right) + "\" y2=\"" + num(py(v)) + "\"/>\n";
  s += "</g>\n";
  s += "<g class=\"axes\" stroke=\"#333333\" stroke-width=\"1\" fill=\"none\">\n";
  s += "<rect x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" + num(pw) + "\" height=\"" + num(ph) + "\"/>\n";
  s += "</g>\n";
  s += "<g class=\"ticks\" fill=\"#333333\">\n";
  for (double v : xt.values)
    s += "<text class=\"xtick\" x=\"" + num(px(v)) + "\" y=\"" + num(bottom + 16) + "\" text-anchor=\"middle\">" +
         format_tick(v, xt) + "</text>\n";
  for (double v : yt.values)
    s += "<text class=\"ytick\" x=\"" + num(left - 6) + "\" y=\"" + num(py(v) + 4) + "\" text-anchor=\"end\">" +
         format_tick(v, yt) + "</text>\n";
  s += "</g>\n";
  if (!spec.x_label.empty())
    s += "<text x=\"" + num(left + pw / 2) + "\" y=\"" + num(H - 14) + "\" text-anchor=\"middle\">" +
         xml_escape(spec.x_label) + "</text>\n";
  if (!spec.y_label.empty())
    s += "<text x=\"16\" y=\"" + num(top + ph / 2) + "\" text-anchor=\"middle\" transform=\"rotate(-90 16 " +
         num(top + ph / 2) + ")\">" + xml_escape(spec.y_label) + "</text>\n";
  if (!has_data)
    s += "<text x=\"" + num(left + pw / 2) + "\" y=\"" + num(top + ph / 2) +
         "\" text-anchor=\"middle\" fill=\"#999999\">no data</text>\n";

  // Series: one path of M/L pieces, dots for isolated points (or all, with markers).
  s += "<g class=\"series\" fill=\"none\" stroke-width=\"2\" stroke-linejoin=\"round\">\n";
  std::vector<std::string> colors;
  for (std::size_t k = 0; k < spec.series.size(); ++k) {
    const Series& ser = spec.series[k];
    const std::string color = xml_escape(ser.color.empty() ? report_detail::palette[k % 10] : ser.color);
    colors.push_back(color);
    std::string d, dots;
    const std::size_t n = ser.x.size();
    for (std::size_t i = 0; i < n; ++i) {
      if (!report_detail::finite_point(ser, i)) continue;
      const bool prev = i > 0 && report_detail::finite_point(ser, i - 1);
      const bool next = i + 1 < n && report_detail::finite_point(ser, i + 1);
      if (!d.empty()) d += ' ';
      d += prev ? 'L' : 'M';
      d += num(px(ser.x[i]));
      d += ' ';
      d += num(py(ser.y[i]));
      if (spec.markers || (!prev && !next))
        dots += "<circle cx=\"" + num(px(ser.x[i])) + "\" cy=\"" + num(py(ser.y[i])) + "\" r=\"2.5\" fill=\"" +
                color + "\" stroke=\"none\"/>\n";
    }
    s += "<g class=\"line\">\n<title>" + xml_escape(ser.name) + "</title>\n";
    if (!d.empty()) s += "<path d=\"" + d + "\" stroke=\"" + color + "\"/>\n";
    s += dots + "</g>\n";
  }
  s += "</g>\n";

  // Legend.
  if (!spec.series.empty()) {
    s += "<g class=\"legend\">\n";
    const double lx = right + 14;
    for (std::size_t k = 0; k < spec.series.size(); ++k) {
      const double ly = top + 10 + 20 * static_cast<double>(k);
      s += "<line x1=\"" + num(lx) + "\" y1=\"" + num(ly) + "\" x2=\"" + num(lx + 22) + "\" y2=\"" + num(ly) +
           "\" stroke=\"" + colors[k] + "\" stroke-width=\"2\"/>\n";
      s += "<text x=\"" + num(lx + 28) + "\" y=\"" + num(ly + 4) + "\">" + xml_escape(spec.series[k].name) + "</text>\n";
    }
    s += "</g>\n";
  }
  s += "</svg>\n";
  return s;
}

}  // namespace rlxf::eval
