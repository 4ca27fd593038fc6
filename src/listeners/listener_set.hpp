// The listening sockets of one server: created from --listen/SOCKPATH/PORT, or taken from systemd.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/options.hpp"
#include "listeners/unix_socket.hpp"

namespace printerfacts {

/// One listening socket, ready for accept(). Move-only: it owns its descriptor.
struct Listener {
  UniqueFd fd;
  bool is_unix = false;
  std::string name;  ///< e.g. "unix:/run/printerfacts/http.sock" or "tcp:[::]:3000" (real port)
  bool from_systemd = false;
  bool metrics = false;             ///< serves only /metrics and /healthz
  std::optional<SocketFile> owned;  ///< set when this process created the socket file
};

/// Owns the listening sockets; closing and file removal happen in close().
class ListenerSet {
 public:
  /// systemd's sockets when it passed any (Options::listen and metrics_listen are then ignored;
  /// a socket named "metrics" is a metrics listener), else creates every configured one. Throws
  /// StartupError naming the address that failed; sockets created before the failure are closed and
  /// their files removed.
  /// `ids` are what validate() resolved of `options` (the socket groups).
  static ListenerSet open(const Options& options, const ResolvedIds& ids);

  /// What open() would find, without creating, binding for long or changing anything
  /// (--check): each Unix socket's directory is writable by the effective user, the socket
  /// group may be set, no file that is not a socket is in the way; each TCP address resolves
  /// and its port can be bound (bound and closed at once). Nothing when systemd would pass the
  /// sockets. Throws StartupError as open() would; returns the warnings printed (a live
  /// instance on a path).
  static std::size_t check(const Options& options, const ResolvedIds& ids);

  ListenerSet() = default;
  ListenerSet(ListenerSet&&) noexcept = default;
  ListenerSet& operator=(ListenerSet&&) noexcept = default;
  ~ListenerSet() { close(); }

  const std::vector<Listener>& listeners() const { return listeners_; }

  /// Stale socket files removed to make room while opening.
  int stale_sockets_replaced() const { return stale_replaced_; }

  /// Removes the socket files this process created (only those still holding our socket), so
  /// no new client can connect by path; the descriptors stay open, and connections already
  /// queued can still be accepted. Sockets from systemd are left alone.
  void remove_files();

  /// Closes every descriptor and removes the files remove_files() has not removed yet.
  void close();

 private:
  std::vector<Listener> listeners_;
  int stale_replaced_ = 0;
};

}  // namespace printerfacts
