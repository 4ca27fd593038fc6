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
  std::optional<SocketFile> owned;  ///< set when the socket file is ours (created or inherited)
  UnixSocketOptions created_with;   ///< of an owned Unix socket: how to create it again
  std::string systemd_name;  ///< FileDescriptorName= of a socket from systemd (handed on as is)
  bool inherited = false;    ///< from our predecessor (an upgrade) or systemd's fd store
  /// Kept in systemd's fd store for the next process of the unit: at exit its file and its
  /// queue are left to that process, as with a socket unit's.
  bool kept = false;

  /// The name it is handed to a successor under (LISTEN_FDNAMES): systemd's own name for its
  /// sockets; for ours "pf.ROLE.unix.DEV.INO" or "pf.ROLE.tcp" (ROLE: service or metrics), by
  /// which the successor knows the socket and its file are its own.
  std::string handover_name() const;
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

  /// Creates the socket file of owned listener `index` again, as open() did, after it was
  /// deleted from under us: the listener's descriptor is the new socket from then on (the old
  /// one is closed here; workers hold their own duplicates). Throws StartupError.
  const Listener& recreate(std::size_t index);

  /// Keeps each owned Unix socket in systemd's fd store (--fd-store), those this process
  /// created: inherited ones are there already. Marks every owned one as kept. Returns how many
  /// were sent; 0 outside systemd.
  std::size_t keep_in_fd_store();

  /// After a successor took every socket over (an upgrade): the files are its own now, so
  /// neither remove_files() nor close() removes them.
  void disown_files();

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
