// The two things printerfacts takes from systemd: sockets it passes (socket activation) and
// the notification protocol (Type=notify, watchdog). Both are no-ops outside systemd.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "util/unique_fd.hpp"

namespace printerfacts::systemd {

/// The listening sockets passed by systemd (or systemd-socket-activate) to this very process,
/// starting at descriptor 3; empty when none were passed. Unsets LISTEN_* so children do not
/// inherit them. Throws StartupError when a passed descriptor is not a listening stream socket.
struct PassedSocket {
  UniqueFd fd;
  std::string name;  ///< FileDescriptorName= of the .socket unit ("" when unnamed)
};
std::vector<PassedSocket> take_listen_fds();

/// Whether systemd passed this process sockets (LISTEN_PID is ours and LISTEN_FDS is set),
/// without taking them.
bool listen_fds_passed();

/// sd_notify(3): "READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=...". Ignored outside systemd,
/// and once the main PID was handed to a successor (hand_over_to). Waits at most a second for
/// a receiver that is not reading, then drops the message.
void notify(std::string_view state);

/// Says `state` ("STATUS=...") if it can be said at once, else drops it: for what is said
/// periodically, which must never stop the thread that says it (sd_notify() blocks while the
/// receiver's queue is full). Returns whether it was sent.
bool notify_if_ready(std::string_view state);

/// Whether NOTIFY_SOCKET is set: systemd (Type=notify) listens to what we say.
bool notify_socket_set();

/// Puts `fd` in the unit's file-descriptor store under `name` (FDSTORE=1, FDNAME=); the unit
/// needs FileDescriptorStoreMax=. Returns whether it was sent.
bool store_fd(int fd, const std::string& name);
/// Takes the descriptors stored under `name` out of the store (FDSTOREREMOVE=1).
void remove_stored_fd(const std::string& name);

/// Tells systemd that `pid`, our successor, is the service's main process now (MAINPID=);
/// from then on this process says nothing more to systemd.
void hand_over_to(pid_t pid);

/// The watchdog interval systemd expects pings within (WatchdogSec=), or zero when disabled.
std::chrono::microseconds watchdog_interval();

}  // namespace printerfacts::systemd
