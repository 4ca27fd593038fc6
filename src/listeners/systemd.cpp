#include "listeners/systemd.hpp"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "util/startup_error.hpp"

namespace printerfacts::systemd {

std::vector<PassedSocket> take_listen_fds() {
  // sd_listen_fds_with_names() checks LISTEN_PID against our pid, so sockets meant for another
  // process (a wrapper that did not exec us) are never taken.
  char** names = nullptr;
  const int n = ::sd_listen_fds_with_names(1, &names);
  if (n < 0) throw errno_error("systemd socket activation (LISTEN_FDS)", -n);
  std::vector<PassedSocket> fds;
  for (int i = 0; i < n; ++i) {
    fds.push_back({UniqueFd(SD_LISTEN_FDS_START + i), names && names[i] ? names[i] : ""});
    if (names) std::free(names[i]);
  }
  std::free(names);
  for (const auto& s : fds) {
    if (::sd_is_socket(s.fd.get(), AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
      throw StartupError(
          "systemd passed descriptor " + std::to_string(s.fd.get()) +
          ", which is not a listening stream socket (check ListenStream= in the .socket unit)");
    }
  }
  return fds;
}

bool listen_fds_passed() {
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  return pid != nullptr && fds != nullptr && std::to_string(::getpid()) == pid;
}

void notify(std::string_view state) {
  ::sd_notify(0, std::string(state).c_str());
}

std::chrono::microseconds watchdog_interval() {
  std::uint64_t usec = 0;
  if (::sd_watchdog_enabled(0, &usec) <= 0) return std::chrono::microseconds(0);
  return std::chrono::microseconds(usec);
}

}  // namespace printerfacts::systemd
