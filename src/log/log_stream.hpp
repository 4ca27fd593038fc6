// A standard stream (stdout, stderr) written by a thread of its own, so that nothing that serves
// ever waits for whoever reads it.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace printerfacts {

/// Why lines were dropped instead of written.
enum class LogDrop : std::size_t {
  queue_full,   ///< the hand-over was full: the stream's reader is stalled or slower than us
  no_space,     ///< ENOSPC, EDQUOT: a full disk or quota
  closed,       ///< EPIPE: nobody reads the pipe or socket any more
  write_error,  ///< any other error of write(2) (EIO, EBADF, ...)
  exit,         ///< still queued when the process had to exit (the writer was stuck)
};
inline constexpr std::array<std::string_view, 5> kLogDropReasons = {
    "queue_full", "no_space", "closed", "write_error", "exit"};

/// Whole lines handed over by any thread and written, in the order handed over, by one writer
/// thread of the stream's own, which is the only thread that may block on the descriptor
/// (Envoy's access logs work the same way: workers append, a flush thread writes). When more
/// than `capacity` bytes wait, new lines are dropped and counted, never waited for. A loss is
/// said once per episode through `notice`, and again, with the count, when writing works again.
/// Thread-safe.
class LogStream {
 public:
  /// How a loss is told: a diagnostic line. Called without the stream's lock held, on the
  /// writer thread, or on the thread that handed lines over when the hand-over overflows.
  using Notice = std::function<void(const std::string&)>;

  /// The default bound on the bytes waiting to be written: about 10,000 access log lines.
  static constexpr std::size_t kDefaultCapacity = 2 * 1024 * 1024;

  /// Writes to `fd` (not owned) from a new thread that blocks every signal. `name` is the
  /// stream's metrics label and its name in notices ("access", "diagnostics"). `overflow_notice`:
  /// whether an overflow is told from the handing-over thread; false for the stream the notices
  /// themselves go to, whose overflow would come back to it (it is told when writing works again).
  LogStream(int fd, std::string name, Notice notice, bool overflow_notice,
            std::size_t capacity = kDefaultCapacity);
  LogStream(const LogStream&) = delete;
  LogStream& operator=(const LogStream&) = delete;
  /// Drains for at most a second more (see drain()).
  ~LogStream();

  /// Hands whole lines over to be written, and leaves `lines` empty with a buffer to reuse (no
  /// allocation in the steady state). Never blocks on I/O: the lock guards a few moves.
  void submit(std::string& lines);

  /// Waits until every line handed over so far is written (or dropped), or `deadline` passes;
  /// true when they were. The stream goes on taking lines.
  bool wait_written(std::chrono::steady_clock::time_point deadline);

  /// Stops taking lines, and waits until everything handed over is written or `deadline`
  /// passes. True when it all was; false when the writer is stuck in write(2): what is still
  /// queued counts as dropped (LogDrop::exit) and the writer thread is left to the process's
  /// exit. Later calls return the first one's answer.
  bool drain(std::chrono::steady_clock::time_point deadline);

  /// Lines dropped so far for `reason`.
  std::uint64_t dropped(LogDrop reason) const;

  /// The stream's name in notices and metrics.
  const std::string& name() const;

 private:
  struct State;
  static void write_loop(const std::shared_ptr<State>& state);

  // Shared with the writer thread, which may outlive this object when it is stuck (drain()).
  std::shared_ptr<State> state_;
  std::thread writer_;
  std::optional<bool> drained_;
};

/// The number of lines in `text` (a partial last line counts as one).
std::uint64_t count_lines(std::string_view text);

}  // namespace printerfacts
