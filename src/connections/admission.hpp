// Whether a freshly accepted connection is served: who its peer is, and how many are open.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <exception>
#include <string>
#include <type_traits>

#include "connections/connection_budget.hpp"
#include "connections/executor.hpp"
#include "connections/peer.hpp"
#include "connections/reactor_hints.hpp"
#include "connections/session.hpp"
#include "connections/session_context.hpp"
#include "util/throttled_warning.hpp"

namespace printerfacts {

/// Reports a connection coroutine that ended with an exception (only resource exhaustion can
/// cause one); the process goes on serving everyone else.
void log_connection_failure(std::exception_ptr e);

/// The door of one listener in one worker: each connection accepted there is served, in a
/// coroutine of its own on the worker's event loop, or turned away.
class Admission {
 public:
  /// `listener` is the listener's index (for metrics); `metrics_listener` when it serves only
  /// /metrics and /healthz. `budget` is the limit this listener's connections count against,
  /// shared with the other listeners of its kind in every worker; it must outlive the Admission.
  /// `workers` is how many workers share `budget` (for above_fair_share). `uid_quota`, when not
  /// null, limits each Unix-socket peer user's connections (--max-connections-per-uid).
  Admission(std::size_t listener, bool metrics_listener, ConnectionBudget& budget,
            std::size_t workers, UidQuota* uid_quota = nullptr)
      : listener_(listener),
        metrics_listener_(metrics_listener),
        budget_(&budget),
        workers_(workers),
        uid_quota_(uid_quota != nullptr && uid_quota->enabled() ? uid_quota : nullptr) {}

  /// Serves or turns away `s`, a connection of `Protocol` on either event loop (an Asio
  /// socket, or a UringSocket).
  /// Load-aware admission: whether the worker of `ctx` should leave new connections of this
  /// listener to the other workers until it is back near the mean. The kernel
  /// wakes the first waiting worker for each connection, so without this the worker that is
  /// awake takes a whole burst and keeps it for the connections' lives. "Well above" is more
  /// than a quarter above the mean and at least 8 more, so that small differences never stop
  /// anyone; one worker alone, and the metrics listeners, never stop.
  bool above_fair_share(const SessionContext& ctx) const {
    if (workers_ <= 1 || metrics_listener_) return false;
    const std::size_t mean = budget_->open() / workers_;
    return ctx.registry.size() > mean + std::max<std::size_t>(mean / 4, 8);
  }

  template <class Protocol, class Stream = Socket<Protocol>>
  void admit(Stream s, SessionContext& ctx) {
    // Who the peer is comes from the kernel (SO_PEERCRED, fixed at connect(); the TCP address),
    // never from anything the peer sends: a refused peer is closed before a byte of it is read.
    constexpr Transport transport =
        std::is_same_v<Protocol, boost::asio::ip::tcp> ? Transport::tcp : Transport::unix_socket;
    Peer peer = identify_peer(s.native_handle(), transport);
    note_not_duplicated(s);  // accepted here, never dup()ed: its close() needs no epoll_ctl
    if constexpr (std::is_same_v<Protocol, boost::asio::ip::tcp>) {
      // A response leaves in one write; Nagle's delay would only hold back pipelined ones.
      const int one = 1;
      ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    } else {
      if (!ctx.site->peers.allows(peer)) {
        refused_.warn("refused {}: peer credentials not allowed", peer.description);
        if (ctx.metrics) ctx.metrics->rejected[listener_].add();
        return;  // the socket closes as it goes out of scope, unread
      }
    }
    // At the connection limit (the whole process's, ConnectionBudget): turn the newcomer away
    // at once rather than let descriptors and memory run out for everyone. The metrics
    // listeners have a small budget of their own, so that monitoring and health checks still
    // get through when the service is full (an orchestrator would kill a server that is only
    // busy).
    ConnectionBudget::Slot slot = budget_->take();
    if (!slot) {
      over_limit_.warn("connection limit ({}) reached on {}; closing new connections",
                       budget_->limit(),
                       metrics_listener_ ? "the metrics listeners" : "the service's listeners");
      if (ctx.metrics) ctx.metrics->over_limit[listener_].add();
      return;
    }
    // One user may not take every connection: a member of the socket's group opening many
    // would otherwise starve nginx. Counted by the kernel's uid, which the peer cannot choose.
    if constexpr (!std::is_same_v<Protocol, boost::asio::ip::tcp>) {
      if (uid_quota_ != nullptr && !slot.hold_uid(*uid_quota_, peer.uid)) {
        over_quota_.warn(
            "{} holds {} connections (--max-connections-per-uid); closing its new "
            "ones",
            peer.description, uid_quota_->limit());
        if (ctx.metrics) ctx.metrics->refuse(listener_, Refusal::uid_quota);
        return;
      }
    }
    if (ctx.metrics) ctx.metrics->accepted[listener_].add();
    const auto executor = s.get_executor();
    boost::asio::co_spawn(executor,
                          run_session(std::move(s), std::move(peer), std::move(slot), ctx,
                                      metrics_listener_, listener_),
                          log_connection_failure);
  }

 private:
  std::size_t listener_;
  bool metrics_listener_;
  ConnectionBudget* budget_;
  std::size_t workers_;
  UidQuota* uid_quota_;
  ThrottledWarning refused_;
  ThrottledWarning over_limit_;
  ThrottledWarning over_quota_;
};

}  // namespace printerfacts
