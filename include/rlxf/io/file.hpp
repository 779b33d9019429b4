#pragma once
// Files (POSIX): whole-file reads with a size limit, and atomic writes (AtomicFile) for every
// file the library writes: checkpoints, configs, tokenizers, reports.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "rlxf/core/error.hpp"

namespace rlxf::io {

namespace detail {

// Fails with `parts` and the system's message for `err`. Callers pass errno first and nothing
// that allocates, so errno is read before anything can change it.
template <class... Parts>
[[noreturn]] void fail_errno(int err, const Parts&... parts) {
  fail(parts..., ": ", std::error_code(err, std::generic_category()).message());
}

struct FileDescriptor {
  int fd = -1;
  FileDescriptor() = default;
  explicit FileDescriptor(int f) : fd(f) {}
  FileDescriptor(FileDescriptor&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

// `path` opened for reading, with its size; anything but a regular file is refused. O_NONBLOCK:
// opening a FIFO must not wait for a writer (it is then refused as not regular).
inline std::pair<FileDescriptor, std::uintmax_t> open_regular_file(const std::filesystem::path& path) {
  FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (file.fd < 0) fail_errno(errno, "cannot open");
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) fail_errno(errno, "cannot stat");
  if (!S_ISREG(st.st_mode)) fail("not a regular file");
  return {std::move(file), static_cast<std::uintmax_t>(st.st_size)};
}

inline std::vector<std::byte> read_file(const std::filesystem::path& path,
                                        std::size_t max_bytes = std::numeric_limits<std::size_t>::max()) {
  const auto [file, size] = open_regular_file(path);
  if (size > max_bytes)
    fail("file of ", size, " bytes, more than the limit of ", max_bytes);
  std::vector<std::byte> bytes(static_cast<std::size_t>(size));
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(file.fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_errno(errno, "reading");
    if (n == 0) break;  // the file shrank since fstat
    got += static_cast<std::size_t>(n);
  }
  bytes.resize(got);
  return bytes;
}

// A file written under a temporary name next to `path` ("<path>.tmp-<pid>-<n>") and renamed
// onto `path` by commit(). Destroyed before commit, it deletes the temporary file, so `path`
// keeps its old content. rename() within one directory is atomic on POSIX file systems. A
// symbolic link at `path` is replaced by the new file, not followed; the temporary file is
// created with O_EXCL, so no link or leftover is ever written through. A leftover of a
// crashed writer with the same name (in a container every process may be PID 1, and the
// counter starts again) is skipped: the next name, with random bits, is tried.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path path) : path_(std::move(path)) {
    for (unsigned attempt = 0;; ++attempt) {
      tmp_ = temp_name(path_, attempt);
      file_.fd = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
      if (file_.fd >= 0) break;
      if (errno != EEXIST || attempt == 63) fail_errno(errno, "cannot create temporary file ", tmp_.c_str());
    }
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (committed_) return;
    if (file_.fd >= 0) ::close(std::exchange(file_.fd, -1));
    ::unlink(tmp_.c_str());
  }

  // The temporary file being written (renamed onto the target by commit()).
  const std::filesystem::path& temp_path() const noexcept { return tmp_; }

  void append(std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(file_.fd, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail_errno(errno, "writing ", tmp_.c_str());
      bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
  }

  // fsync, close, rename onto the target, then fsync the directory so the rename itself is
  // durable. That last step is best effort: the new file is in place whatever it returns.
  void commit() {
    if (::fsync(file_.fd) != 0) fail_errno(errno, "syncing ", tmp_.c_str());
    if (::close(std::exchange(file_.fd, -1)) != 0) fail_errno(errno, "closing ", tmp_.c_str());
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
      fail_errno(errno, "renaming ", tmp_.c_str(), " onto the target");
    committed_ = true;
    const std::filesystem::path dir = path_.has_parent_path() ? path_.parent_path() : ".";
    const FileDescriptor d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d.fd >= 0) ::fsync(d.fd);
  }

 private:
  static std::filesystem::path temp_name(const std::filesystem::path& path, unsigned attempt) {
    static std::atomic<unsigned long long> counter{0};  // distinct names for concurrent writers
    std::filesystem::path tmp = path;
    tmp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    if (attempt > 0) tmp += "-" + std::to_string(std::random_device{}());
    return tmp;
  }

  std::filesystem::path path_;
  std::filesystem::path tmp_;
  FileDescriptor file_;
  bool committed_ = false;
};

}  // namespace detail

// Files written under a temporary name and renamed into place (see detail::AtomicFile).
using detail::AtomicFile;

// What a run records of its input file so that a changed file is noticed: its size and a
// 64-bit FNV-1a hash of its bytes (change detection, not a defence against an adversary who
// wants a collision).
struct FileIdentity {
  std::uint64_t size = 0;
  std::uint64_t fnv1a = 0;
  bool operator==(const FileIdentity&) const = default;
  // The hash as 16 hex digits.
  std::string hash_hex() const {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a));
    return hex;
  }
  // "6754321 bytes, FNV-1a 0123456789abcdef"
  std::string describe() const { return std::to_string(size) + " bytes, FNV-1a " + hash_hex(); }
};

// Reads the regular file at `path` in blocks (any size) and returns its identity.
inline FileIdentity identify_file(const std::filesystem::path& path) {
  return with_context(path.string(), [&] {
    const auto [file, size] = detail::open_regular_file(path);
    FileIdentity id{0, 0xcbf29ce484222325ULL};
    std::vector<unsigned char> block(std::size_t{1} << 16);
    for (;;) {
      const ssize_t n = ::read(file.fd, block.data(), block.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) detail::fail_errno(errno, "reading");
      if (n == 0) break;
      for (ssize_t i = 0; i < n; ++i) id.fnv1a = (id.fnv1a ^ block[static_cast<std::size_t>(i)]) * 0x100000001b3ULL;
      id.size += static_cast<std::uint64_t>(n);
    }
    return id;
  });
}

}  // namespace rlxf::io
