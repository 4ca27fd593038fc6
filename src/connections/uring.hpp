// One worker's io_uring: the submission and completion queues its connections share, and the
// loop turn that submits everything queued and waits, in one system call, for what completed.
//
// Why: on these machines a system call costs more than everything else a request takes, and
// the epoll loop makes two to three per keep-alive request (epoll_wait, recv, send). With a ring,
// a loop turn queues every connection's receives, sends and closes and submits them with the
// wait for the next completions in a single io_uring_enter(2): at 64 connections a fraction of
// a call per request.
#pragma once

#include <liburing.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/coarse_clock.hpp"

namespace printerfacts {

/// The event loop a worker runs its connections on.
enum class IoBackend { epoll, io_uring };

/// "epoll" or "io_uring".
const char* io_backend_name(IoBackend backend);

/// One submitted operation, as its completion finds it: the ring calls `complete` with the
/// completion's result (a count, or -errno) and flags (IORING_CQE_F_MORE: a multishot operation
/// goes on). Submitted with its address as user_data; user_data 0 means "nobody listens" (a
/// cancellation, a close).
struct UringOp {
  void (*complete)(UringOp* self, int result, unsigned flags) = nullptr;
};

class UringConn;

/// One worker's ring. Only the worker's own thread touches it, except wake().
class Ring {
 public:
  /// Why io_uring cannot serve here, as a sentence for the log ("" when it can): the kernel is
  /// older than 6.1, a seccomp filter (container runtimes' default profiles) or
  /// kernel.io_uring_disabled refuses io_uring_setup(2), or memory is short.
  static std::string unavailable_reason();

  /// A ring made disabled, for enable() on the thread that will submit (IORING_SETUP_SINGLE_ISSUER
  /// binds it to that thread). Throws std::system_error when io_uring_setup(2) fails.
  Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  /// Submits what is still queued (the closes of the last connections), then frees the ring
  /// and every connection state left (their descriptors closed).
  ~Ring();

  /// On the worker's thread, before anything is submitted.
  void enable();

  /// Submits what is queued and frees the kernel's ring (cancelling what it still does); from
  /// then on the ring takes nothing, and a connection state released closes its descriptor at
  /// once. For a worker destroyed with connections still open.
  void close();

  /// A submission queue entry to fill in; never null: a full queue is submitted first.
  io_uring_sqe* sqe();

  /// Submits everything queued and waits until something completes, `timeout` passes, or
  /// wake() is called. Completions are not dispatched here: see dispatch(). True when the
  /// timeout passed with nothing completed.
  bool submit_and_wait(std::chrono::nanoseconds timeout);

  /// Calls every completion that has arrived (the caller runs it inside the worker's
  /// io_context, so that coroutines resume with Asio's per-thread memory recycling).
  void dispatch();

  /// From any thread: ends the current or next submit_and_wait() early.
  void wake();

  /// Asks the kernel to cancel `op` (its completion then comes with -ECANCELED, unless it
  /// completed first).
  void cancel(const UringOp& op);

  /// Connection states whose session has ended while the kernel still works for them (a queued
  /// send the peer has not read yet): each gets `grace` more before it is cancelled.
  void adopt(UringConn* conn, CoarseClock::duration grace);
  /// Cancels the operations of every adopted connection whose grace has passed (all of them
  /// with `all`, at the shutdown deadline).
  void sweep_orphans(CoarseClock::time_point now, bool all = false);
  /// Connection states that exist: a worker ends only once none is left.
  std::size_t connections() const { return connections_; }

  /// One more completion will come soon that nobody waits for (a send of this turn whose
  /// connection reads next): the turn's wait asks for it too, so that it alone does not end
  /// the wait and cost a system call of its own.
  void expect_quietly() { ++quiet_; }

  /// Send buffers are the worker's, not the connection's: an idle connection holds none.
  std::string take_buffer();
  void give_back(std::string buffer);

 private:
  friend class UringConn;
  void arm_wake();

  io_uring ring_{};
  int wake_fd_ = -1;
  struct WakeOp : UringOp {
    Ring* ring = nullptr;
  } wake_op_;
  std::uint64_t wake_value_ = 0;
  void forget(UringConn* conn);

  /// The longest a turn waits for quiet completions when nothing else comes.
  static constexpr std::chrono::milliseconds kQuietWait{10};

  UringConn* orphans_ = nullptr;
  unsigned quiet_ = 0;
  std::uint64_t turn_ = 0;
  io_uring_sqe* last_sqe_ = nullptr;  ///< the newest entry, while it is still unsubmitted  ///<
                                      ///< adopted connection states, linked through them
  bool dead_ = false;
  std::unique_ptr<io_uring_sqe> scratch_;  ///< what sqe() gives after close()
  std::size_t connections_ = 0;
  std::vector<std::string> buffers_;
};

}  // namespace printerfacts
