#include "listeners/systemd.hpp"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include <string>

#include "util/startup_error.hpp"

namespace printerfacts::systemd {

std::vector<int> take_listen_fds() {
  // sd_listen_fds() checks LISTEN_PID against our pid, so sockets meant for another process
  // (a wrapper that did not exec us) are never taken.
  const int n = ::sd_listen_fds(1);
  if (n < 0) throw StartupError(errno_message("systemd socket activation (LISTEN_FDS)", -n));
  std::vector<int> fds;
  for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; ++fd) {
    if (::sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
      throw StartupError("systemd passed descriptor " + std::to_string(fd) +
                         ", which is not a listening stream socket (check ListenStream= in the .socket unit)");
    }
    fds.push_back(fd);
  }
  return fds;
}

void notify(std::string_view state) { ::sd_notify(0, std::string(state).c_str()); }

std::chrono::microseconds watchdog_interval() {
  std::uint64_t usec = 0;
  if (::sd_watchdog_enabled(0, &usec) <= 0) return std::chrono::microseconds(0);
  return std::chrono::microseconds(usec);
}

}  // namespace printerfacts::systemd
