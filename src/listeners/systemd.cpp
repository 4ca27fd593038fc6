#include "listeners/systemd.hpp"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
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

namespace {
// Set once the main PID is our successor's: what we would say (STOPPING=1) is not about the
// service any more, and systemd would refuse it from a process that is not the main one.
std::atomic<bool> handed_over{false};
}  // namespace

void notify(std::string_view state) {
  if (handed_over.load()) return;
  ::sd_notify(0, std::string(state).c_str());
}

bool notify_socket_set() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  return socket != nullptr && *socket != '\0';
}

bool store_fd(int fd, const std::string& name) {
  if (handed_over.load() || !notify_socket_set()) return false;
  const std::string state = "FDSTORE=1\nFDNAME=" + name;
  return ::sd_pid_notify_with_fds(0, 0, state.c_str(), &fd, 1) > 0;
}

void remove_stored_fd(const std::string& name) {
  if (handed_over.load()) return;
  ::sd_notify(0, ("FDSTOREREMOVE=1\nFDNAME=" + name).c_str());
}

void hand_over_to(pid_t pid) {
  ::sd_notify(0, ("MAINPID=" + std::to_string(pid) + "\nREADY=1").c_str());
  handed_over.store(true);
}

std::chrono::microseconds watchdog_interval() {
  std::uint64_t usec = 0;
  if (::sd_watchdog_enabled(0, &usec) <= 0) return std::chrono::microseconds(0);
  return std::chrono::microseconds(usec);
}

}  // namespace printerfacts::systemd
