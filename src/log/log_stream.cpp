#include "log/log_stream.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

namespace printerfacts {

struct LogStream::State {
  State(int out, std::string label, Notice tell, bool tell_overflow, std::size_t bound)
      : fd(out),
        name(std::move(label)),
        notice(std::move(tell)),
        overflow_notice(tell_overflow),
        capacity(bound) {}

  const int fd;
  const std::string name;
  const Notice notice;
  const bool overflow_notice;
  const std::size_t capacity;

  std::mutex mutex;
  std::condition_variable wake;     ///< the writer: lines were queued, or stop
  std::condition_variable written;  ///< drain(): the writer finished a batch
  std::vector<std::string> queue;   ///< handed over, not yet taken by the writer
  /// What the writer is writing: changed by the writer under the lock only, read by it without
  /// the lock while it writes (nobody else changes it then).
  std::vector<std::string> writing;
  std::vector<std::string> spare;  ///< emptied buffers, for submit() to hand back
  std::size_t pending_bytes = 0;   ///< queued plus being written: what capacity bounds
  bool stopping = false;           ///< drain() began: the writer exits once the queue is empty
  bool abandoned = false;          ///< drain() gave up on the writer
  bool finished = false;           ///< the writer thread has exited
  bool losing = false;             ///< in a loss episode: lines dropped since the last write
  /// submit() may write itself when nothing is queued (write_now); off for good once the
  /// descriptor turns out not to take a write that cannot wait (a tty, a regular file).
  bool direct = true;
  std::uint64_t lost = 0;  ///< lines dropped in this episode

  std::array<std::atomic<std::uint64_t>, kLogDropReasons.size()> dropped{};

  /// Counts `lines` dropped for `reason`, under the lock; true when that starts an episode.
  bool drop(LogDrop reason, std::uint64_t lines) {
    dropped[static_cast<std::size_t>(reason)].fetch_add(lines, std::memory_order_relaxed);
    lost += lines;
    return !std::exchange(losing, true);
  }

  void say(const std::string& message) const {
    if (notice) notice(message);
  }
};

namespace {

std::string_view descriptor_name(int fd) {
  return fd == STDOUT_FILENO ? "stdout" : fd == STDERR_FILENO ? "stderr" : "its descriptor";
}

LogDrop reason_of(int error) {
  switch (error) {
    case ENOSPC:
    case EDQUOT:
      return LogDrop::no_space;
    case EPIPE:
    case ECONNRESET:
      return LogDrop::closed;
    default:
      return LogDrop::write_error;
  }
}

// The writer thread must never take a signal meant for the process (SIGTERM's default action
// would kill it without a clean shutdown): it starts with every signal blocked.
std::thread start_blocking_signals(std::function<void()> run) {
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, &old);
  std::thread t(std::move(run));
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return t;
}

}  // namespace

// Writes `lines` only as far as it can without waiting (RWF_NOWAIT: a pipe, a socket such as
// journald's, /dev/null). Returns the bytes written, or -1 with errno (EAGAIN: it would have
// waited; EOPNOTSUPP: this descriptor cannot say so, a tty or a regular file).
ssize_t write_now(int fd, const std::string& lines) {
  iovec v{const_cast<char*>(lines.data()), lines.size()};
  return ::pwritev2(fd, &v, 1, -1, RWF_NOWAIT);
}

std::uint64_t count_lines(std::string_view text) {
  const auto n = static_cast<std::uint64_t>(std::count(text.begin(), text.end(), '\n'));
  return n + (!text.empty() && text.back() != '\n' ? 1 : 0);
}

LogStream::LogStream(int fd, std::string name, Notice notice, bool overflow_notice,
                     std::size_t capacity)
    : state_(std::make_shared<State>(fd, std::move(name), std::move(notice), overflow_notice,
                                     capacity)) {
  writer_ = start_blocking_signals([state = state_] { write_loop(state); });
}

LogStream::~LogStream() {
  drain(std::chrono::steady_clock::now() + std::chrono::seconds(1));
}

const std::string& LogStream::name() const {
  return state_->name;
}

std::uint64_t LogStream::dropped(LogDrop reason) const {
  return state_->dropped[static_cast<std::size_t>(reason)].load(std::memory_order_relaxed);
}

void LogStream::submit(std::string& lines) {
  if (lines.empty()) return;
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  if (s.stopping) {  // the process is exiting and its logs are being written out
    s.dropped[static_cast<std::size_t>(LogDrop::exit)].fetch_add(count_lines(lines),
                                                                 std::memory_order_relaxed);
    lines.clear();
    return;
  }
  if (s.pending_bytes + lines.size() > s.capacity) {
    // Full: the reader is stalled or slower than the lines come. Waiting would stop the caller
    // (a worker serving requests), so the lines are dropped and counted instead.
    const bool first = s.drop(LogDrop::queue_full, count_lines(lines));
    lines.clear();
    lock.unlock();
    if (first && s.overflow_notice) {
      s.say(fmt::format(
          "logging to {} ({}): not read fast enough (its reader is stalled or slow); dropping "
          "lines until it is, counted in printerfacts_log_lines_dropped_total",
          descriptor_name(s.fd), s.name));
    }
    return;
  }
  if (s.direct && s.queue.empty() && s.writing.empty() && !s.losing) {
    // Nothing is queued or being written, so writing here keeps the lines in order, and costs
    // one system call where handing over costs the writer's wake-up, its write and its wait
    // (about five, one request at a time). It never waits: whatever the descriptor will not
    // take at once (a reader that is behind, an error to count and report) goes to the writer
    // as before. Under the lock, so that no other submit() can queue before this is decided.
    const ssize_t n = write_now(s.fd, lines);
    if (n == static_cast<ssize_t>(lines.size())) {
      lines.clear();  // its capacity stays with the caller, for the next lines
      return;
    }
    if (n > 0) {
      lines.erase(0, static_cast<std::size_t>(n));
    } else if (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS) {
      s.direct = false;
    }
  }
  const bool was_empty = s.queue.empty();
  s.pending_bytes += lines.size();
  s.queue.push_back(std::move(lines));
  if (s.spare.empty()) {
    lines = std::string();
  } else {
    lines = std::move(s.spare.back());
    s.spare.pop_back();
  }
  lock.unlock();
  if (was_empty) s.wake.notify_one();
}

bool LogStream::wait_written(std::chrono::steady_clock::time_point deadline) {
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  return s.written.wait_until(lock, deadline, [&] { return s.pending_bytes == 0 || s.finished; });
}

bool LogStream::drain(std::chrono::steady_clock::time_point deadline) {
  if (drained_) return *drained_;
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  s.stopping = true;
  s.wake.notify_one();
  if (s.written.wait_until(lock, deadline, [&] { return s.finished; })) {
    lock.unlock();
    writer_.join();
    drained_ = true;
    return true;
  }
  // Stuck in write(2) (a reader that stopped reading; nothing interrupts a blocking write).
  // What is queued is lost; the thread holds its own reference to the state and ends with the
  // process.
  s.abandoned = true;
  std::uint64_t left = 0;
  for (const auto& lines : s.queue) left += count_lines(lines);
  for (const auto& lines : s.writing) left += count_lines(lines);
  s.queue.clear();
  s.dropped[static_cast<std::size_t>(LogDrop::exit)].fetch_add(left, std::memory_order_relaxed);
  lock.unlock();
  writer_.detach();
  drained_ = false;
  return false;
}

namespace {

/// Writes `batch` in full; returns 0, or the errno that stopped it with `unwritten` set to the
/// bytes that were not written. A descriptor someone made non-blocking is waited for with
/// poll(), a tenth of a second at a time, until `give_up()`.
template <class GiveUp>
int write_batch(int fd, const std::vector<std::string>& batch, std::size_t& unwritten,
                GiveUp give_up) {
  std::vector<iovec> iov;
  iov.reserve(batch.size());
  std::size_t left = 0;
  for (const auto& lines : batch) {
    iov.push_back({const_cast<char*>(lines.data()), lines.size()});
    left += lines.size();
  }
  std::size_t first = 0;
  while (left > 0) {
    const int count = static_cast<int>(std::min<std::size_t>(iov.size() - first, IOV_MAX));
    const ssize_t n = ::writev(fd, iov.data() + first, count);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN && !give_up()) {
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, 100);
        continue;
      }
      unwritten = left;
      return errno;
    }
    auto done = static_cast<std::size_t>(n);
    left -= done;
    while (done > 0) {
      iovec& v = iov[first];
      const std::size_t step = std::min(done, v.iov_len);
      v.iov_base = static_cast<char*>(v.iov_base) + step;
      v.iov_len -= step;
      done -= step;
      if (v.iov_len == 0) ++first;
    }
    while (first < iov.size() && iov[first].iov_len == 0) ++first;
  }
  return 0;
}

}  // namespace

void LogStream::write_loop(const std::shared_ptr<State>& state) {
  State& s = *state;
  std::vector<std::string>& batch = s.writing;
  for (;;) {
    {
      std::unique_lock lock(s.mutex);
      s.wake.wait(lock, [&] { return !s.queue.empty() || s.stopping; });
      if (s.queue.empty()) break;  // stopping, and everything is written
      batch.swap(s.queue);
    }
    std::size_t unwritten = 0;
    const int error = write_batch(s.fd, batch, unwritten, [&] {
      std::lock_guard lock(s.mutex);
      return s.abandoned;
    });
    std::string message;
    {
      std::lock_guard lock(s.mutex);
      if (s.abandoned) {
        // drain() counted this batch already (LogDrop::exit).
      } else if (error != 0) {
        // What was not written: the tail of the batch, from a line it may have cut.
        std::uint64_t lost = 0;
        for (auto it = batch.rbegin(); it != batch.rend() && unwritten > 0; ++it) {
          const std::size_t here = std::min(unwritten, it->size());
          lost += count_lines(std::string_view(*it).substr(it->size() - here));
          unwritten -= here;
        }
        if (s.drop(reason_of(error), lost)) {
          message = fmt::format(
              "logging to {} ({}): write failed ({}); dropping lines until it works again, "
              "counted in printerfacts_log_lines_dropped_total",
              descriptor_name(s.fd), s.name, std::strerror(error));
        }
      } else if (s.losing && s.queue.empty()) {
        // Caught up: everything handed over since is written (a reader that is only slow
        // stays in one episode, not one per batch).
        message = fmt::format("logging to {} ({}) works again; {} line(s) were dropped",
                              descriptor_name(s.fd), s.name, s.lost);
        s.losing = false;
        s.lost = 0;
      }
      for (auto& lines : batch) {
        s.pending_bytes -= lines.size();
        if (s.spare.size() < 64) {
          lines.clear();
          s.spare.push_back(std::move(lines));
        }
      }
      batch.clear();
      s.written.notify_all();
    }
    if (!message.empty()) s.say(message);
  }
  std::lock_guard lock(s.mutex);
  s.finished = true;
  s.written.notify_all();
}

}  // namespace printerfacts
