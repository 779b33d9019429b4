#pragma once
// RunLock: one process at a time in a run folder. Two processes writing the same checkpoints,
// metrics and reports would leave a folder that neither run produced.
//
//   train::RunLock lock("runs/x");   // throws if another process holds runs/x
//
// The lock is an exclusive flock(2) on "<dir>/.lock", held for the object's lifetime. The
// kernel releases it when the holder exits, however it exits (a crash or SIGKILL included), so
// a stale lock never blocks a rerun; the file stays and only says who held it last. The holder
// writes "pid <pid> on <host> since <UTC time>" into it, which the refusal quotes.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>
#include <utility>

#include "rlxf/core/error.hpp"
#include "rlxf/core/text.hpp"
#include "rlxf/io/file.hpp"

namespace rlxf::train {

class RunLock {
 public:
  explicit RunLock(const std::filesystem::path& dir) : path_(dir / ".lock") {
    with_context("locking run folder " + dir.string(), [&] {
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) fail("cannot create the folder: ", ec.message());
      // O_NOFOLLOW: a symbolic link planted as .lock is refused, not followed.
      fd_.fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (fd_.fd < 0) io::detail::fail_errno(errno, "cannot open ", path_.string());
      while (::flock(fd_.fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR) continue;
        if (errno == EWOULDBLOCK)
          fail("in use by another process (", holder(), "; lock file ", path_.string(),
               "): wait for it to finish or use another run folder");
        io::detail::fail_errno(errno, "cannot lock ", path_.string());
      }
      const std::string me = "pid " + std::to_string(::getpid()) + " on " + host() + " since " + now() + "\n";
      if (::ftruncate(fd_.fd, 0) != 0 || ::pwrite(fd_.fd, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size()))
        io::detail::fail_errno(errno, "cannot write ", path_.string());
    });
  }
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  // The holder's line from the lock file, or a note that it has not written it yet.
  std::string holder() const {
    char buf[256];
    const ssize_t n = ::pread(fd_.fd, buf, sizeof buf - 1, 0);
    std::string text = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    if (const auto eol = text.find('\n'); eol != std::string::npos) text.resize(eol);
    return text.empty() ? "holder not yet recorded" : "held by " + printable(text);
  }
  static std::string host() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) return "an unknown host";
    return name;
  }
  static std::string now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
  }

  std::filesystem::path path_;
  io::detail::FileDescriptor fd_;
};

}  // namespace rlxf::train
