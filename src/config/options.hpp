// Everything printerfacts can be told, in one plain struct. Built by the command line parser,
// checked once by validate(), then passed by const& to the parts that need it.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/duration.hpp"
#include "config/listen_address.hpp"
#include "config/trusted_proxies.hpp"
#include "log/access_log_format.hpp"

namespace printerfacts {

/// The settings a reload (SIGHUP) applies to the running process, and only those. A Site is
/// built from this part alone (connections/site.hpp), so a restart-only setting cannot leak
/// into a reload, and whether a setting is reloadable follows from where its value lives
/// (config/settings.hpp); LevelDB marks such fields "can be changed dynamically".
struct SiteOptions {
  // One fact per line, UTF-8. Default: the facts compiled into the binary.
  std::optional<std::string> facts_file;
  // Directory served under /static/. Default: the assets compiled into the binary.
  std::optional<std::string> static_dir;

  // Unix-socket peers allowed to talk to us, by SO_PEERCRED user or group (names or numbers).
  // When either list is non-empty, a peer matching neither is closed before a byte is read.
  // Default: empty (file permissions alone decide).
  std::vector<std::string> allow_uid;
  std::vector<std::string> allow_gid;

  // Peers whose forwarded-client header is believed: "uid:USER" or "gid:GROUP" (names or
  // numbers) match a Unix-socket peer's SO_PEERCRED, "tcp:CIDR" a TCP peer's address. From any
  // other peer the header is ignored, and counted. Default: none (the client is never taken
  // from a header; every member of the socket's group could otherwise claim any address).
  std::vector<std::string> trust_forwarded;
  // Peers that must begin each connection with a PROXY protocol header (HAProxy's
  // specification, version 1 or 2), whose source address is then the client, whatever
  // --trust-forwarded says: "uid:USER", "gid:GROUP" or "tcp:CIDR" as for trust_forwarded. From
  // such a peer a connection without a valid header is closed unanswered; from any other peer a
  // PROXY header is only a malformed request. Default: none.
  std::vector<std::string> proxy_protocol;
  // The header a trusted proxy names the client in: X-Forwarded-For (its rightmost entry, the
  // one the proxy appended), X-Real-IP, or Forwarded (RFC 7239). Default: X-Forwarded-For.
  std::string client_header = "X-Forwarded-For";

  // Least severe diagnostic printed: trace, debug, info, warn, error, critical, off. Default: info.
  std::string log_level = "info";

  friend bool operator==(const SiteOptions&, const SiteOptions&) = default;
};

struct Options {
  // Where to listen. Default: unix:$SOCKPATH if SOCKPATH is set, else tcp:[::]:$PORT with PORT
  // defaulting to 3000. Ignored when systemd passes sockets (LISTEN_FDS).
  std::vector<ListenAddress> listen;

  // Permission bits of Unix socket files this process creates. Default: 0660 (owner and group).
  mode_t socket_mode = 0660;

  // Group (name or number) given to Unix socket files this process creates. Default: the
  // process's own group.
  std::optional<std::string> socket_group;

  // Listen backlog of sockets this process creates. A full Unix-socket backlog makes connect()
  // fail at once (nginx answers 502), so it is generous. Default: 4096 (the kernel caps it at
  // net.core.somaxconn).
  int backlog = 4096;

  // Open connections the process keeps at most; more are closed as soon as they are accepted.
  // Each costs a descriptor and a few KiB. Default: 16384 (nginx's worker_connections is a
  // per-worker cap of the same kind).
  unsigned max_connections = 16384;

  // Open connections one Unix-socket peer user (SO_PEERCRED uid) may hold at once; more of its
  // connections are closed as soon as they are accepted, and counted, while other users are
  // unaffected. Size it above what nginx keeps open (its worker_connections, or the upstream
  // keepalive pool) if nginx is among those users. Default: 0 (no per-user limit).
  unsigned max_connections_per_uid = 0;

  // Worker threads, each with its own event loop; 0 means one per CPU (worker_threads()).
  // Default: 0.
  unsigned threads = 0;

  // Limits on requests. Defaults follow nginx: 8 KiB of request line and headers
  // (large_client_header_buffers), and since no route takes a body, 64 KiB of body at most.
  std::uint64_t max_header_size = 8 * 1024;
  std::uint64_t max_body_size = 64 * 1024;

  // Time from a request's first byte to the end of its headers (and body). Default: 10s.
  Duration header_timeout = std::chrono::seconds(10);
  // Time a keep-alive connection may sit idle between requests. Default: 60s.
  Duration idle_timeout = std::chrono::seconds(60);
  // Time a response may take to be written to a slow reader. Default: 60s (nginx send_timeout).
  Duration send_timeout = std::chrono::seconds(60);
  // Time in-flight requests get to finish after SIGTERM/SIGINT. Default: 10s.
  Duration shutdown_timeout = std::chrono::seconds(10);
  // Lame duck: time after SIGTERM during which everything is still served but /healthz answers
  // 503, before the listeners close (Kubernetes and load balancers stop sending only after
  // they learn a replica is leaving). A second signal ends it early. Default: 0 (none).
  Duration shutdown_delay = Duration::zero();

  // Listeners that serve only /metrics and /healthz, with their own socket permissions, so the
  // socket the proxy exposes never serves metrics. Default: none.
  std::vector<ListenAddress> metrics_listen;
  // Mode and group of metrics Unix sockets. Default: 0660 and the process's group.
  mode_t metrics_socket_mode = 0660;
  std::optional<std::string> metrics_socket_group;
  // Also serve /metrics on the main listeners. Default: off.
  bool metrics_on_main = false;

  // Watch the paths of the Unix sockets this process created (not those systemd passed): a
  // deleted one is re-created, one a successor took over (--takeover, an upgrade) makes this
  // process drain and exit 0, anything else put there is left alone and /healthz answers 503
  // (docs/deployment.md, "The socket's life"). Default: on.
  bool socket_guard = true;
  // Take the Unix socket paths over from a running instance instead of refusing to start: bind
  // PATH.takeover, then rename it over PATH (atomic), so that every connect() finds a listening
  // socket; the old instance's guard sees the successor and drains. Default: off.
  bool takeover = false;
  // Keep each Unix socket this process creates in systemd's file-descriptor store (FDSTORE=1;
  // the unit needs FileDescriptorStoreMax=), so that the next process of the unit takes it back
  // and a restart refuses no connection. Default: off.
  bool fd_store = false;

  // Permit socket modes that let every local user connect (any "other" bit). Default: off, so a
  // typo such as 0666 for 0660 fails at start-up instead of exposing the service.
  bool allow_world = false;

  // What a reload may change.
  SiteOptions site;

  // The worker threads' event loop: io_uring where the kernel and the sandbox allow it (a ring
  // per worker, one system call per loop turn), else epoll; io_uring or epoll insists on one.
  // Default: auto.
  enum class IoBackend { automatic, io_uring, epoll } io_backend = IoBackend::automatic;

  // One line per request on stdout. Default: on.
  bool access_log = true;
  // How access log lines look (log/access_log_format.hpp). Default: none, "auto": as
  // --log-format (text or json).
  std::optional<AccessLogFormat> access_log_format;
  // Write the access log to this file instead of stdout, appending, and reopen it on SIGUSR1
  // (after logrotate moved it). Default: none (stdout).
  std::optional<std::string> access_log_file;
  // Access log and diagnostics as text or one JSON object per line. Default: text.
  enum class LogFormat { text, json } log_format = LogFormat::text;

  // A file of further flags (TOML: `facts-file = "/srv/facts.txt"`), read at start-up and again
  // on SIGHUP. Flags on the command line win over it. Default: none.
  std::optional<std::string> config_file;

  // What the process does instead of serving. The settings above have rows in the table
  // (config/settings.hpp); these are modes of the command line only.

  // Validate the configuration as thoroughly as a start would, without creating or changing
  // anything, print a summary and exit (0 when valid). Default: off.
  bool check = false;
  // Check only what a reload (SIGHUP) reads, for ExecReload= before the signal. Default: off.
  bool check_reload = false;
  // Print every effective setting and where it came from, as TOML, and exit. Default: off.
  bool print_config = false;

  // Act as a health-check client instead: ask the first listen address for /healthz and exit
  // 0 when it answers 200, 1 otherwise ("printerfacts healthcheck" or --healthcheck).
  bool healthcheck = false;

  // Act as a troubleshooter instead ("printerfacts doctor --as USER"): can USER connect to the
  // first listen address (a Unix socket), and does the running nginx see it? Read-only.
  bool doctor = false;
  std::string doctor_as;                ///< the user who must be able to connect
  std::optional<int> doctor_nginx_pid;  ///< the nginx to check; none: its pid file, or /proc

  friend bool operator==(const Options&, const Options&) = default;
};

/// The user and group names of the reloadable part, resolved to IDs.
struct SiteIds {
  std::vector<uid_t> allow_uids;                               ///< --allow-uid
  std::vector<gid_t> allow_gids;                               ///< --allow-gid
  TrustedProxies trusted;                                      ///< --trust-forwarded
  TrustedProxies proxy_senders;                                ///< --proxy-protocol
  ClientHeader client_header = ClientHeader::x_forwarded_for;  ///< --client-header
};

/// The user and group names of a valid configuration, resolved to IDs: once, by validate(), so
/// that what was checked is what is used.
struct ResolvedIds {
  std::optional<gid_t> socket_group;          ///< --socket-group
  std::optional<gid_t> metrics_socket_group;  ///< --metrics-socket-group
  SiteIds site;
};

/// Checks ranges and combinations and resolves user and group names; throws StartupError
/// naming the offending flag and value, or the user or group that does not exist.
/// Options{} with a listen address is valid.
ResolvedIds validate(const Options& options);

/// The same for the reloadable part alone (what a reload checks).
SiteIds validate(const SiteOptions& site);

/// The diagnostic levels --log-level takes, least severe first ("warning" is "warn" as the log
/// prints it).
inline constexpr const char* kLogLevels[] = {"trace",   "debug", "info",     "warn",
                                             "warning", "error", "critical", "off"};

/// How many worker threads `options` asks for: --threads, or one per CPU when it is 0.
unsigned worker_threads(const Options& options);

/// The ID of a user or a group, by name or number, for the setting `flag` ("allow-uid");
/// throws StartupError naming the flag and the name when there is none.
enum class IdKind { user, group };
unsigned resolve_id(IdKind kind, const std::string& name, std::string_view flag);
/// The same for a setting that names peers by their credentials (--allow-uid, --allow-gid,
/// uid: and gid: entries of --trust-forwarded and --proxy-protocol): the kernel's overflow
/// uid or gid (65534, "nobody" and "nogroup") is refused, saying why.
unsigned resolve_peer_id(IdKind kind, const std::string& name, std::string_view flag);
inline uid_t resolve_user(const std::string& user, std::string_view flag = "allow-uid") {
  return resolve_id(IdKind::user, user, flag);
}
inline gid_t resolve_group(const std::string& group, std::string_view flag = "socket-group") {
  return resolve_id(IdKind::group, group, flag);
}

}  // namespace printerfacts
