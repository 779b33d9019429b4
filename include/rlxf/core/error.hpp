#pragma once
// rlxf::Error: the one exception type of the library. It carries a message and a chain of
// context strings (outermost first), e.g.
//   "loading checkpoint run/ckpt.safetensors: tensor 'h.0.attn.c_attn.weight': file is truncated"
// Code that knows where it is (a file, a line, a field) adds context with `with_context`.
// Messages are one line whatever they quote: control characters (a newline or an escape
// sequence inside a hostile file's text) are written as \xNN.
#include <exception>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rlxf {

// `s` with every control character (bytes 0x00-0x1f and 0x7f) written as \xNN, so that text
// from an input file cannot break an error message's single line or drive a terminal.
namespace detail {
// Appends byte c to out as "\xNN".
inline void append_hex_escape(std::string& out, unsigned char c) {
  constexpr char hex[] = "0123456789abcdef";
  out += "\\x";
  out += hex[c >> 4];
  out += hex[c & 0xf];
}
}  // namespace detail

inline std::string escape_control(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f)
      detail::append_hex_escape(out, c);
    else
      out += ch;
  }
  return out;
}

class Error : public std::exception {
 public:
  explicit Error(std::string_view message) : message_(escape_control(message)) { compose(); }

  // The innermost message, without context.
  const std::string& message() const noexcept { return message_; }
  // Context strings, outermost first.
  const std::vector<std::string>& context() const noexcept { return context_; }
  const char* what() const noexcept override { return what_.c_str(); }

  // Prepends an outer context: "ctx: <what() so far>".
  Error& add_context(std::string ctx) {
    context_.insert(context_.begin(), escape_control(ctx));
    compose();
    return *this;
  }

 private:
  void compose() {
    what_.clear();
    for (const auto& c : context_) what_ += c + ": ";
    what_ += message_;
  }
  std::string message_;
  std::vector<std::string> context_;
  std::string what_;
};

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

// Throws rlxf::Error with the message built from `args` (streamed one after another).
template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(detail::concat(args...));
}

// Runs f(); an rlxf::Error escaping from it gets `ctx` prepended to its context.
template <class F>
decltype(auto) with_context(std::string_view ctx, F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (Error& e) {
    e.add_context(std::string(ctx));
    throw;
  }
}

}  // namespace rlxf

// Precondition check for library entry points: throws rlxf::Error naming the function,
// the failed condition and a message streamed from the remaining arguments.
#define RLXF_REQUIRE(cond, ...)                                                   \
  do {                                                                            \
    if (!(cond)) ::rlxf::fail(__func__, ": ", __VA_ARGS__, " [failed: " #cond "]"); \
  } while (0)
