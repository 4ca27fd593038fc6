#include "client/doctor.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "client/healthcheck.hpp"
#include "config/options.hpp"
#include "util/unique_fd.hpp"

namespace printerfacts {
namespace {

struct Identity {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  ///< primary and supplementary, as a fresh login would have them
};

std::string group_name(gid_t gid) {
  const group* g = ::getgrgid(gid);
  return g ? g->gr_name : std::to_string(gid);
}

std::string user_name(uid_t uid) {
  const passwd* p = ::getpwuid(uid);
  return p ? p->pw_name : std::to_string(uid);
}

std::optional<Identity> identity_of(const std::string& user) {
  const passwd* p = ::getpwnam(user.c_str());
  if (p == nullptr) {
    try {
      p = ::getpwuid(resolve_user(user, "as"));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  if (p == nullptr) return std::nullopt;
  Identity id{p->pw_name, p->pw_uid, p->pw_gid, {}};
  int n = 64;
  id.groups.resize(static_cast<std::size_t>(n));
  while (::getgrouplist(p->pw_name, p->pw_gid, id.groups.data(), &n) < 0) {
    id.groups.resize(static_cast<std::size_t>(n));
  }
  id.groups.resize(static_cast<std::size_t>(n));
  return id;
}

bool in_groups(const std::vector<gid_t>& groups, gid_t gid) {
  return std::find(groups.begin(), groups.end(), gid) != groups.end();
}

// Whether `who` has permission `bit` (4 read, 2 write, 1 search/execute) on a file with `st`, by
// the kernel's rule: the owner's bits if owner, else the group's if in the group, else others'.
// Root passes (CAP_DAC_OVERRIDE; search needs one x bit somewhere for files, never for dirs).
bool permitted(const Identity& who, const struct stat& st, unsigned bit) {
  if (who.uid == 0) return true;
  if (st.st_uid == who.uid) return (st.st_mode >> 6) & bit;
  if (in_groups(who.groups, st.st_gid)) return (st.st_mode >> 3) & bit;
  return st.st_mode & bit;
}

std::string describe(const struct stat& st) {
  return fmt::format("mode {:04o}, owner {}, group {}", st.st_mode & 07777, user_name(st.st_uid),
                     group_name(st.st_gid));
}

std::string absolute(const std::string& path) {
  if (!path.empty() && path.front() == '/') return path;
  char cwd[4096];
  return ::getcwd(cwd, sizeof cwd) ? std::string(cwd) + "/" + path : path;
}

// What to do about a connect() errno, as nginx reports it in "connect() ... failed (N: ...)".
std::string advice(int err) {
  switch (err) {
    case EACCES:
      return "a directory on the path is not searchable, or the socket not writable, for this "
             "user: fix the socket's group (--socket-group, SocketGroup=) or the directory's mode";
    case ENOENT:
      return "no socket at that path in this mount namespace: is the service running, and does "
             "the client see the same /run (PrivateTmp=, containers)?";
    case ECONNREFUSED:
      return "a stale socket file: nothing listens on it; restart the service (with socket "
             "activation systemd listens even while it restarts)";
    case EAGAIN:
      return "the listen queue is full: raise --backlog/Backlog= and net.core.somaxconn, or add "
             "threads; watch printerfacts_listen_queue_pending";
    default:
      return "see docs/deployment.md, Troubleshooting";
  }
}

class Report {
 public:
  void ok(const std::string& s) { fmt::print("ok: {}\n", s); }
  void hint(const std::string& s) { fmt::print("hint: {}\n", s); }
  // The first failure decides the exit status and is named again at the end.
  void fail(const std::string& step, const std::string& s) {
    fmt::print("FAIL: {}\n", s);
    if (failed_step_.empty()) failed_step_ = step;
  }
  bool failed() const { return !failed_step_.empty(); }
  const std::string& failed_step() const { return failed_step_; }

 private:
  std::string failed_step_;
};

// Step 1: every directory from / down to the socket must be searchable by `who`.
bool walk_path(const Identity& who, const std::string& path, Report& report) {
  for (std::size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    const std::string dir = path.substr(0, slash);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
      report.fail("path", fmt::format("{} does not exist ({})", dir, std::strerror(errno)));
      return false;
    }
    if (!permitted(who, st, 1)) {
      report.fail("path", fmt::format("{} cannot search {} ({}): connect() fails with "
                                      "EACCES (13: Permission denied)",
                                      who.name, dir, describe(st)));
      report.hint(fmt::format("chmod o+x {}, or give it a group {} is in", dir, who.name));
      return false;
    }
  }
  report.ok(fmt::format("{} can search every directory down to {}", who.name, path));
  return true;
}

// Step 2: the socket itself, as lstat() found it (`found` false: nothing there); connect()
// needs write permission on it.
bool check_socket(const Identity& who, const std::string& path, bool found, const struct stat& st,
                  Report& report) {
  if (!found) {
    report.fail("socket", fmt::format("{} does not exist: connect() fails with ENOENT (2: No "
                                      "such file or directory)",
                                      path));
    report.hint(advice(ENOENT));
    return false;
  }
  if (!S_ISSOCK(st.st_mode)) {
    report.fail("socket", fmt::format("{} is not a socket ({})", path, describe(st)));
    return false;
  }
  if (!permitted(who, st, 2)) {
    std::vector<std::string> names;
    for (const gid_t g : who.groups) names.push_back(group_name(g));
    report.fail("socket", fmt::format("{} may not connect to {} ({}): {} is in groups {}, not {}",
                                      who.name, path, describe(st), who.name, fmt::join(names, ","),
                                      group_name(st.st_gid)));
    report.hint(
        fmt::format("give the socket {}'s group (--socket-group, SocketGroup=) with "
                    "mode 0660, or add {} to group {} (then restart it)",
                    who.name, who.name, group_name(st.st_gid)));
    return false;
  }
  report.ok(fmt::format("{} may connect to {} ({})", who.name, path, describe(st)));
  return true;
}

// Step 3 (root only): a child that becomes `who` connects and asks for /healthz.
bool connect_as(const Identity& who, const std::string& path, Report& report) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    report.fail("connect", std::string("pipe: ") + std::strerror(errno));
    return false;
  }
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  std::fflush(stdout);
  const pid_t child = ::fork();
  if (child < 0) {
    report.fail("connect", std::string("fork: ") + std::strerror(errno));
    return false;
  }
  if (child == 0) {
    read_end.reset();
    std::string line;
    int code = 1;
    if (::setgroups(who.groups.size(), who.groups.data()) != 0 || ::setgid(who.gid) != 0 ||
        ::setuid(who.uid) != 0) {
      line = std::string("cannot become the user: ") + std::strerror(errno);
    } else {
      UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof addr.sun_path - 1));
      if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        const int err = errno;
        line = fmt::format("E{} connect() as {} failed ({}: {}); {}", err, who.name, err,
                           std::strerror(err), advice(err));
      } else {
        s.reset();
        const HealthResult r = check_health(
            ListenAddress{ListenAddress::Kind::unix_socket, path, "", 0}, std::chrono::seconds(5));
        line = fmt::format("{} {}", r.healthy ? "OK" : "NO", r.detail);
        code = r.healthy ? 0 : 1;
      }
    }
    [[maybe_unused]] const auto n = ::write(write_end.get(), line.data(), line.size());
    ::_exit(code);
  }
  write_end.reset();
  std::string line;
  char chunk[512];
  for (ssize_t n; (n = ::read(read_end.get(), chunk, sizeof chunk)) > 0;)
    line.append(chunk, static_cast<std::size_t>(n));
  int status = 0;
  ::waitpid(child, &status, 0);
  if (line.rfind("OK ", 0) == 0) {
    report.ok(fmt::format("connected as {} and asked /healthz: {}", who.name, line.substr(3)));
    return true;
  }
  if (line.rfind("NO ", 0) == 0) {
    report.fail("answer",
                fmt::format("connected as {}, but /healthz: {}", who.name, line.substr(3)));
  } else if (!line.empty() && line[0] == 'E') {
    report.fail("connect", line.substr(line.find(' ') + 1));
  } else {
    report.fail("connect", line.empty() ? "the connecting child failed" : line);
  }
  return false;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The numbers after "Name:" in /proc/PID/status ("Uid:", "Gid:", "Groups:").
std::vector<long> status_numbers(const std::string& status, const std::string& name) {
  std::vector<long> out;
  const auto at = status.find("\n" + name);
  if (at == std::string::npos) return out;
  std::istringstream line(status.substr(at + name.size() + 1, status.find('\n', at + 1) - at));
  for (long v; line >> v;) out.push_back(v);
  return out;
}

struct NginxProcess {
  pid_t pid;
  std::string status;  ///< /proc/PID/status
};

std::vector<NginxProcess> nginx_processes(const std::optional<pid_t>& given) {
  std::vector<NginxProcess> found;
  std::optional<pid_t> master = given;
  if (!master) {
    const std::string text = read_file("/run/nginx.pid");
    if (!text.empty()) master = static_cast<pid_t>(std::atol(text.c_str()));
  }
  // The master and its children (the workers), or every nginx there is.
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return found;
  while (const dirent* e = ::readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
    if (pid <= 0) continue;
    std::string status = read_file(fmt::format("/proc/{}/status", pid));
    if (status.rfind("Name:\tnginx\n", 0) != 0) continue;
    const auto ppid = status_numbers(status, "PPid:");
    if (!master || pid == *master || (!ppid.empty() && ppid[0] == *master))
      found.push_back({pid, std::move(status)});
  }
  ::closedir(proc);
  std::sort(found.begin(), found.end(),
            [](const NginxProcess& a, const NginxProcess& b) { return a.pid < b.pid; });
  return found;
}

// Step 4: the running nginx sees the same socket (its mount namespace, its root), and its
// workers have the socket's group (groups are fixed when a process starts).
void check_nginx(const std::optional<pid_t>& given, const std::string& path,
                 const struct stat& socket_st, bool have_socket, Report& report) {
  const std::vector<NginxProcess> nginx = nginx_processes(given);
  if (nginx.empty()) {
    report.hint(given ? fmt::format("no nginx process {}", *given) : "no running nginx found");
    return;
  }
  for (const auto& [pid, status] : nginx) {
    const auto uid = status_numbers(status, "Uid:");
    const auto gid = status_numbers(status, "Gid:");
    const auto groups = status_numbers(status, "Groups:");
    const std::string seen = fmt::format("/proc/{}/root{}", pid, path);
    struct stat st {};
    if (::stat(seen.c_str(), &st) != 0) {
      report.fail("nginx", fmt::format("nginx {} sees no {} (its mount namespace or root differs: "
                                       "PrivateTmp=, a container, another namespace)",
                                       pid, path));
      continue;
    }
    if (have_socket && (st.st_dev != socket_st.st_dev || st.st_ino != socket_st.st_ino)) {
      report.fail("nginx", fmt::format("nginx {} sees a different file at {} than this process "
                                       "does (another mount namespace: PrivateTmp=, a container)",
                                       pid, path));
      continue;
    }
    const bool is_worker = uid.size() > 1 && uid[1] != 0;
    if (!is_worker || !have_socket) {
      report.ok(fmt::format("nginx {} sees the same socket", pid));
      continue;
    }
    const bool owner = static_cast<uid_t>(uid[1]) == socket_st.st_uid;
    const bool group = (gid.size() > 1 && static_cast<gid_t>(gid[1]) == socket_st.st_gid) ||
                       std::find(groups.begin(), groups.end(), socket_st.st_gid) != groups.end();
    if (!owner && !group && (socket_st.st_mode & 0002) == 0) {
      report.fail("nginx", fmt::format("nginx worker {} (user {}) is not in group {} of {}: a "
                                       "group added after nginx started is not in a running "
                                       "worker; restart nginx",
                                       pid, user_name(static_cast<uid_t>(uid[1])),
                                       group_name(socket_st.st_gid), path));
      continue;
    }
    report.ok(fmt::format("nginx worker {} (user {}) sees the same socket and may connect", pid,
                          user_name(static_cast<uid_t>(uid[1]))));
  }
  // Mandatory access control can forbid what the modes allow.
  if (read_file("/sys/fs/selinux/enforce").rfind('1', 0) == 0) {
    report.hint(
        "SELinux is enforcing: the socket's directory needs a label nginx may connect to "
        "(httpd_var_run_t); see docs/deployment.md");
  }
  if (read_file("/sys/module/apparmor/parameters/enabled").rfind('Y', 0) == 0) {
    const std::string label = read_file(fmt::format("/proc/{}/attr/current", nginx.front().pid));
    if (!label.empty() && label.rfind("unconfined", 0) != 0) {
      report.hint(fmt::format("nginx runs under the AppArmor profile {}: it must allow {} rw",
                              label.substr(0, label.find('\n')), path));
    }
  }
}

}  // namespace

int run_doctor(const DoctorRequest& request) {
  Report report;
  const auto who = identity_of(request.user);
  if (!who) {
    report.fail("user", fmt::format("no user {}", request.user));
    return 1;
  }
  const std::string path = absolute(request.socket_path);
  // Looked at once, as root sees it: check_socket judges it for USER (after a good walk),
  // check_nginx compares nginx's view with it (whatever USER may do).
  struct stat socket_st {};
  const bool found = ::lstat(path.c_str(), &socket_st) == 0;
  const bool have_socket = found && S_ISSOCK(socket_st.st_mode);
  const bool walked = walk_path(*who, path, report);
  const bool socket_ok = walked && check_socket(*who, path, found, socket_st, report);
  bool answered = false;
  if (::geteuid() == 0) {
    // Tried even when a static check failed: the kernel's own answer, and its errno, are what
    // nginx's error log will show.
    answered = connect_as(*who, path, report);
  } else if (socket_ok) {
    report.hint(fmt::format("not root: could not connect as {} to confirm", who->name));
  }
  check_nginx(request.nginx_pid, path, socket_st, have_socket, report);
  if (report.failed()) {
    fmt::print("result: {} cannot use {}: first failing step: {}\n", who->name, path,
               report.failed_step());
    return 1;
  }
  if (!answered) {
    fmt::print("result: not confirmed: run as root to connect as {}\n", who->name);
    return 1;
  }
  fmt::print("result: {} can connect to {} and gets an answer\n", who->name, path);
  return 0;
}

}  // namespace printerfacts
