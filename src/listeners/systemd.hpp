// The two things printerfacts takes from systemd: sockets it passes (socket activation) and
// the notification protocol (Type=notify, watchdog). Both are no-ops outside systemd.
#pragma once

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

/// sd_notify(): "READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=...". Ignored outside systemd.
void notify(std::string_view state);

/// The watchdog interval systemd expects pings within (WatchdogSec=), or zero when disabled.
std::chrono::microseconds watchdog_interval();

}  // namespace printerfacts::systemd
