// Upgrading in place without a supervisor (SIGUSR2), the convention of nginx, php-fpm, gunicorn
// and Puma: the binary now at the executable's path is started with the same arguments and
// handed every listening socket by the protocol systemd uses (LISTEN_FDS, LISTEN_FDNAMES); this
// process stops accepting and drains only once the new one says it is ready, so no connection
// is refused at any moment. A new binary that fails before it is ready changes nothing.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "listeners/listener_set.hpp"
#include "util/unique_fd.hpp"

namespace printerfacts {

/// How this process was started: what an upgrade starts again.
struct Invocation {
  /// The executable's absolute path, read at start: a binary replaced there since (a package
  /// upgrade renames a new file over it) is what the upgrade runs.
  std::string executable;
  std::vector<std::string> arguments;  ///< argv, argv[0] included
};

/// This process's invocation (/proc/self/exe, read now, and `argv`).
Invocation current_invocation(int argc, const char* const* argv);

/// A successor being started: its process, and the pipe it says "ready" on.
struct Successor {
  pid_t pid = -1;
  UniqueFd said;  ///< the read end: "READY\n", "EXEC errno\n" (it could not be run), or EOF
};

/// Starts `how` with every socket of `listeners` as descriptors 3, 4, ... (LISTEN_FDS,
/// LISTEN_PID, LISTEN_FDNAMES from Listener::handover_name()) and the pipe's write end after
/// them (PRINTERFACTS_UPGRADE_FD). Throws std::system_error when the pipe or fork() fails.
Successor start_successor(const Invocation& how, const ListenerSet& listeners);

/// In a successor: the descriptor its predecessor waits on (PRINTERFACTS_UPGRADE_FD), taken
/// from the environment, which no longer has it afterwards; -1 when no upgrade started us.
int take_upgrade_fd();

/// In a successor, once serving: tells the predecessor on `fd` and closes it.
void tell_predecessor_ready(int fd);

/// Whether `said`, everything the successor wrote on the pipe, says it is ready. If not and it
/// could not be run at all, `why` says so; otherwise `why` is left empty.
bool successor_ready(const std::string& said, const std::string& executable, std::string& why);

}  // namespace printerfacts
