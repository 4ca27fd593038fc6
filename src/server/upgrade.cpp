#include "server/upgrade.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <system_error>

extern char** environ;

namespace printerfacts {
namespace {

constexpr std::string_view kUpgradeFdVariable = "PRINTERFACTS_UPGRADE_FD";

bool starts_with(const char* entry, std::string_view name) {
  return std::strncmp(entry, name.data(), name.size()) == 0 && entry[name.size()] == '=';
}

// Writes `value` in decimal at `out` (room for 20 digits and the NUL): no allocation and no
// locale, so it may run in the child between fork() and exec().
void format_pid(char* out, pid_t value) {
  char digits[24];
  int n = 0;
  auto v = static_cast<unsigned long>(value);
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) *out++ = digits[--n];
  *out = '\0';
}

}  // namespace

Invocation current_invocation(int argc, const char* const* argv) {
  Invocation how;
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  how.executable = n > 0 ? std::string(path, static_cast<std::size_t>(n)) : std::string(argv[0]);
  for (int i = 0; i < argc; ++i) how.arguments.emplace_back(argv[i]);
  return how;
}

Successor start_successor(const Invocation& how, const ListenerSet& listeners) {
  // Everything the child needs is made here: between fork() and exec() a child of a threaded
  // process may only make async-signal-safe calls (no allocation, no locks).
  std::vector<int> sockets;
  std::string names;
  for (const auto& l : listeners.listeners()) {
    sockets.push_back(l.fd.get());
    names += (names.empty() ? "" : ":") + l.handover_name();
  }
  const int n = static_cast<int>(sockets.size());
  const int ready_target = 3 + n;
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    // What systemd set for us alone, or for an earlier upgrade, is replaced below.
    if (starts_with(*e, "LISTEN_FDS") || starts_with(*e, "LISTEN_PID") ||
        starts_with(*e, "LISTEN_FDNAMES") || starts_with(*e, "WATCHDOG_PID") ||
        starts_with(*e, kUpgradeFdVariable)) {
      continue;
    }
    env_storage.emplace_back(*e);
  }
  const bool watchdog = std::getenv("WATCHDOG_USEC") != nullptr;
  env_storage.push_back(fmt::format("LISTEN_FDS={}", n));
  env_storage.push_back("LISTEN_FDNAMES=" + names);
  env_storage.push_back(fmt::format("{}={}", kUpgradeFdVariable, ready_target));
  // The pids are the child's own, known only after fork(): room is made now, filled in there.
  std::string listen_pid(std::string("LISTEN_PID=") + std::string(24, '\0'));
  std::string watchdog_pid(std::string("WATCHDOG_PID=") + std::string(24, '\0'));
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(listen_pid.data());
  if (watchdog) envp.push_back(watchdog_pid.data());  // systemd's watchdog follows the main pid
  envp.push_back(nullptr);
  std::vector<std::string> arg_storage = how.arguments;
  std::vector<char*> argv;
  for (auto& a : arg_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe2()");
  }
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  const std::size_t listen_pid_at = std::strlen("LISTEN_PID=");
  const std::size_t watchdog_pid_at = std::strlen("WATCHDOG_PID=");

  const pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork()");
  if (pid == 0) {
    // The child. The server's signals are blocked in this thread (and would stay blocked
    // across exec): the new process must start with the default mask, as any other start.
    sigset_t none;
    sigemptyset(&none);
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
    // Every descriptor to hand on is moved above the numbers it will get (3 ... 3+n), then put
    // in place with dup2(), which also clears close-on-exec on the copy.
    int moved[1024];
    const int count = n < 1023 ? n : 1023;
    for (int i = 0; i < count; ++i)
      moved[i] = ::fcntl(sockets[i], F_DUPFD_CLOEXEC, ready_target + 1);
    const int ready_moved = ::fcntl(write_end.get(), F_DUPFD_CLOEXEC, ready_target + 1);
    for (int i = 0; i < count; ++i) ::dup2(moved[i], 3 + i);
    ::dup2(ready_moved, ready_target);
    // Nothing else goes on, close-on-exec or not (liburing makes its ring descriptors without
    // it): every upgrade would otherwise leave the next process a few more.
    ::close_range(static_cast<unsigned>(ready_target) + 1, ~0U, 0);
    format_pid(listen_pid.data() + listen_pid_at, ::getpid());
    format_pid(watchdog_pid.data() + watchdog_pid_at, ::getpid());
    ::execve(how.executable.c_str(), argv.data(), envp.data());
    // Could not be run: said on the pipe (by number; strerror is not async-signal-safe).
    const int err = errno;
    char message[32] = "EXEC ";
    format_pid(message + 5, static_cast<pid_t>(err));
    const std::size_t len = std::strlen(message);
    message[len] = '\n';
    [[maybe_unused]] const ssize_t w = ::write(ready_target, message, len + 1);
    ::_exit(127);
  }
  return Successor{pid, std::move(read_end)};
}

int take_upgrade_fd() {
  const char* value = std::getenv(kUpgradeFdVariable.data());
  if (value == nullptr) return -1;
  const int fd = std::atoi(value);
  ::unsetenv(kUpgradeFdVariable.data());
  // Only a pipe we were given: a stale variable must not make us write into a random file.
  if (fd < 3 || ::fcntl(fd, F_GETFD) < 0) return -1;
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
}

void tell_predecessor_ready(int fd) {
  if (fd < 0) return;
  [[maybe_unused]] const ssize_t w = ::write(fd, "READY\n", 6);
  ::close(fd);
}

bool successor_ready(const std::string& said, const std::string& executable, std::string& why) {
  if (said.rfind("READY\n", 0) == 0) return true;
  if (said.rfind("EXEC ", 0) == 0) {
    why = fmt::format("cannot execute {}: {}", executable,
                      std::strerror(std::atoi(said.c_str() + 5)));
  }
  return false;
}

}  // namespace printerfacts
