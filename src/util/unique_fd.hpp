// The one owner of a file descriptor: closes it when it goes out of scope, moves, never copies.
#pragma once

#include <unistd.h>

#include <utility>

namespace printerfacts {

class UniqueFd {
 public:
  UniqueFd() = default;
  /// Owns `fd` (negative: nothing).
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  /// Gives the descriptor up without closing it.
  int release() { return std::exchange(fd_, -1); }
  /// Closes what is owned (if anything) and owns `fd` instead. A close() error is ignored: the
  /// descriptor is gone either way (retrying would close someone else's), and nothing here is
  /// written through it.
  void reset(int fd = -1) {
    if (fd_ >= 0 && fd_ != fd) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace printerfacts
