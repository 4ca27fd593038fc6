#include "listeners/systemd.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
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

// Sends `state` to NOTIFY_SOCKET (a path, or "@name" for an abstract socket), waiting at most
// `wait` while the receiver's queue is full. sd_notify() would wait for ever: a systemd that
// stopped reading would then stop the thread that reads our signals and runs the shutdown.
bool send_state(std::string_view state, std::chrono::milliseconds wait) {
  const char* where = std::getenv("NOTIFY_SOCKET");
  if (handed_over.load() || where == nullptr || (where[0] != '/' && where[0] != '@')) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::size_t length = std::strlen(where);
  if (length >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, where, length);
  if (where[0] == '@') addr.sun_path[0] = '\0';
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  int flags = MSG_NOSIGNAL;
  if (wait.count() > 0) {
    const timeval limit{.tv_sec = static_cast<time_t>(wait.count() / 1000),
                        .tv_usec = static_cast<suseconds_t>(wait.count() % 1000 * 1000)};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  } else {
    flags |= MSG_DONTWAIT;
  }
  return ::sendto(fd.get(), state.data(), state.size(), flags,
                  reinterpret_cast<const sockaddr*>(&addr),
                  static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length)) >= 0;
}

}  // namespace

void notify(std::string_view state) {
  // A second is far more than systemd takes; past it the message is lost, not the process.
  send_state(state, std::chrono::seconds(1));
}

bool notify_if_ready(std::string_view state) {
  return send_state(state, std::chrono::milliseconds(0));
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
  notify("FDSTOREREMOVE=1\nFDNAME=" + name);
}

void hand_over_to(pid_t pid) {
  notify("MAINPID=" + std::to_string(pid) + "\nREADY=1");
  handed_over.store(true);
}

std::chrono::microseconds watchdog_interval() {
  std::uint64_t usec = 0;
  if (::sd_watchdog_enabled(0, &usec) <= 0) return std::chrono::microseconds(0);
  return std::chrono::microseconds(usec);
}

}  // namespace printerfacts::systemd
