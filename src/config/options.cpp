#include "config/options.hpp"

#include <grp.h>

#include <charconv>
#include <vector>

#include "util/startup_error.hpp"

namespace printerfacts {

void validate(const Options& o) {
  if (o.listen.empty()) throw StartupError("no listen address configured");
  if (o.socket_mode > 0777) throw StartupError("--socket-mode must be an octal mode from 0 to 0777");
  if ((o.socket_mode & 0200) == 0) {
    // connect() on a Unix socket needs write permission on the file; without it even the
    // owner (and the group) could not reach the server.
    throw StartupError("--socket-mode " + std::to_string(o.socket_mode) + " lacks the owner write bit; nobody could connect");
  }
  if (o.threads == 0 || o.threads > 1024) throw StartupError("--threads must be from 1 to 1024");
  if (o.backlog < 1 || o.backlog > 65535) throw StartupError("--backlog must be from 1 to 65535");
  if (o.max_header_size < 1024) throw StartupError("--max-header-size must be at least 1k");
  const auto positive = [](Duration d, const char* flag) {
    if (d.count() <= 0) throw StartupError(std::string(flag) + " must be greater than zero");
  };
  positive(o.header_timeout, "--header-timeout");
  positive(o.idle_timeout, "--idle-timeout");
  positive(o.send_timeout, "--send-timeout");
  positive(o.shutdown_timeout, "--shutdown-timeout");
  for (std::size_t i = 0; i < o.listen.size(); ++i) {
    for (std::size_t j = i + 1; j < o.listen.size(); ++j) {
      if (o.listen[i] == o.listen[j]) {
        throw StartupError("listen address " + o.listen[i].to_string() + " is given twice");
      }
    }
  }
  if (o.socket_group) resolve_group(*o.socket_group);
}

gid_t resolve_group(const std::string& group) {
  std::vector<char> buffer(16384);
  struct group entry {};
  struct group* found = nullptr;
  const int err = ::getgrnam_r(group.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (err == 0 && found != nullptr) return found->gr_gid;

  unsigned long gid = 0;
  const auto [end, ec] = std::from_chars(group.data(), group.data() + group.size(), gid);
  if (!group.empty() && ec == std::errc() && end == group.data() + group.size() && gid < 0xffffffffUL) {
    return static_cast<gid_t>(gid);
  }
  throw StartupError("--socket-group: no group named \"" + group + "\"");
}

}  // namespace printerfacts
