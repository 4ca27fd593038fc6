#include "server/signals.hpp"

#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

#include "util/startup_error.hpp"
#include "util/unique_fd.hpp"

namespace printerfacts {
namespace {

UniqueFd blocked_signalfd(std::span<const int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (const int s : signals) sigaddset(&set, s);
  if (::pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0)
    throw StartupError("pthread_sigmask() failed");
  UniqueFd fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd.valid()) throw errno_error("signalfd()", errno);
  return fd;
}

}  // namespace

void block_server_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (const int s : kServerSignals) sigaddset(&set, s);
  if (::pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0)
    throw StartupError("pthread_sigmask() failed", exit_code::os_error);
}

Signals::Signals(boost::asio::io_context& io, std::span<const int> signals)
    : descriptor_(io, blocked_signalfd(signals).release()) {}

Task<int> Signals::next() {
  for (;;) {
    signalfd_siginfo info{};
    const ssize_t n = ::read(descriptor_.native_handle(), &info, sizeof info);
    if (n == static_cast<ssize_t>(sizeof info)) co_return static_cast<int>(info.ssi_signo);
    if (n < 0 && errno != EAGAIN && errno != EINTR) co_return 0;
    auto [ec] =
        co_await descriptor_.async_wait(boost::asio::posix::descriptor_base::wait_read, use_tuple);
    if (ec) co_return 0;
  }
}

}  // namespace printerfacts
