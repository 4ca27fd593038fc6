// Who is on the other end of an accepted connection, for the access log.
#pragma once

#include <string>

namespace printerfacts {

/// For a Unix socket: "unix:pid=P,uid=U,gid=G" from SO_PEERCRED (the credentials of the process
/// that connected, as the kernel recorded them, which the peer cannot forge). For TCP:
/// "tcp:ADDRESS:PORT", with IPv4-mapped IPv6 addresses shown as plain IPv4. "-" when unknown.
std::string describe_peer(int fd);

}  // namespace printerfacts
