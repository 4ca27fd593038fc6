#include "listeners/unix_socket.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <future>

#include "temp_dir.hpp"
#include "util/startup_error.hpp"

namespace printerfacts {
namespace {

using testing::TempDir;

TEST(ClassifyExisting, DecidesFromLstatAndConnect) {
  EXPECT_EQ(classify_existing(ENOENT, 0, 0), ExistingPath::absent);
  EXPECT_EQ(classify_existing(EACCES, 0, 0), ExistingPath::unknown);
  EXPECT_EQ(classify_existing(0, S_IFREG | 0644, 0), ExistingPath::not_socket);
  EXPECT_EQ(classify_existing(0, S_IFDIR | 0755, 0), ExistingPath::not_socket);
  EXPECT_EQ(classify_existing(0, S_IFLNK | 0777, 0), ExistingPath::not_socket);
  EXPECT_EQ(classify_existing(0, S_IFSOCK | 0660, 0), ExistingPath::live_socket);
  EXPECT_EQ(classify_existing(0, S_IFSOCK | 0660, EAGAIN), ExistingPath::live_socket);
  EXPECT_EQ(classify_existing(0, S_IFSOCK | 0660, ECONNREFUSED), ExistingPath::stale_socket);
  EXPECT_EQ(classify_existing(0, S_IFSOCK | 0660, EACCES), ExistingPath::unknown);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const StartupError& e) {
    return e.what();
  }
  return "";
}

TEST(BindUnixSocket, CreatesWithTheConfiguredModeAndListens) {
  TempDir dir;
  const std::string path = dir / "s.sock";
  UnixSocketOptions o;
  o.mode = 0600;
  BoundUnixSocket s = bind_unix_socket(path, o);
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(probe_path(path), ExistingPath::live_socket);
  EXPECT_FALSE(s.replaced_stale);
  s.fd.reset();
  EXPECT_EQ(probe_path(path), ExistingPath::stale_socket);
  EXPECT_TRUE(remove_unix_socket(s.file));
  EXPECT_EQ(probe_path(path), ExistingPath::absent);
}

TEST(BindUnixSocket, ReplacesAStaleSocket) {
  TempDir dir;
  const std::string path = dir / "s.sock";
  BoundUnixSocket old = bind_unix_socket(path, {});
  old.fd.reset();  // the old server died without cleaning up
  BoundUnixSocket fresh = bind_unix_socket(path, {});
  EXPECT_TRUE(fresh.replaced_stale);
  EXPECT_EQ(probe_path(path), ExistingPath::live_socket);
  EXPECT_FALSE(remove_unix_socket(old.file)) << "the old identity must not remove the new socket";
  EXPECT_EQ(probe_path(path), ExistingPath::live_socket);
  fresh.fd.reset();
  EXPECT_TRUE(remove_unix_socket(fresh.file));
}

TEST(BindUnixSocket, RefusesALiveSocket) {
  TempDir dir;
  const std::string path = dir / "s.sock";
  const BoundUnixSocket live = bind_unix_socket(path, {});
  EXPECT_EQ(error_of([&] { bind_unix_socket(path, {}); }),
            "another instance is listening on " + path +
                "; stop it first, take it over (--takeover), or choose another --listen path");
  EXPECT_EQ(probe_path(path), ExistingPath::live_socket);
}

TEST(BindUnixSocket, TakesALiveSocketOverByRenameAndLeavesNothingBehind) {
  TempDir dir;
  const std::string path = dir / "s.sock";
  const BoundUnixSocket live = bind_unix_socket(path, {});
  EXPECT_EQ(probe_fate(live.file), PathFate::ours);
  UnixSocketOptions takeover;
  takeover.takeover = true;
  const BoundUnixSocket successor = bind_unix_socket(path, takeover);
  EXPECT_EQ(probe_fate(live.file), PathFate::successor) << "the old instance's guard sees it";
  EXPECT_EQ(probe_fate(successor.file), PathFate::ours);
  EXPECT_NE(::access((path + ".takeover").c_str(), F_OK), 0);
  EXPECT_FALSE(remove_unix_socket(live.file)) << "the old identity must not remove the new one";
}

TEST(PathFate, DecidesFromIdentityLstatAndConnect) {
  EXPECT_EQ(classify_fate(false, ENOENT, 0, 0), PathFate::deleted);
  EXPECT_EQ(classify_fate(false, ENOTDIR, 0, 0), PathFate::deleted);
  EXPECT_EQ(classify_fate(false, EACCES, 0, 0), PathFate::replaced) << "cannot look: no guess";
  EXPECT_EQ(classify_fate(true, 0, S_IFSOCK | 0660, 0), PathFate::ours);
  EXPECT_EQ(classify_fate(false, 0, S_IFSOCK | 0660, 0), PathFate::successor);
  EXPECT_EQ(classify_fate(false, 0, S_IFSOCK | 0660, EAGAIN), PathFate::successor);
  EXPECT_EQ(classify_fate(false, 0, S_IFSOCK | 0660, ECONNREFUSED), PathFate::replaced);
  EXPECT_EQ(classify_fate(false, 0, S_IFSOCK | 0660, EACCES), PathFate::replaced);
  EXPECT_EQ(classify_fate(false, 0, S_IFREG | 0644, 0), PathFate::replaced);
  EXPECT_EQ(classify_fate(false, 0, S_IFDIR | 0755, 0), PathFate::replaced);
}

TEST(BindUnixSocket, RefusesAndKeepsARegularFile) {
  TempDir dir;
  const std::string path = dir / "data.txt";
  std::ofstream(path) << "precious";
  EXPECT_EQ(error_of([&] { bind_unix_socket(path, {}); }),
            path +
                " exists and is not a socket; refusing to remove it: move it away or choose "
                "another --listen path");
  std::ifstream in(path);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST(BindUnixSocket, ConcurrentStartsNeverDeleteEachOther) {
  // Many binds racing for one stale path: exactly one wins, the others see a live socket, and
  // the winner's socket is the one that is still listening at the end.
  for (int round = 0; round < 20; ++round) {
    TempDir dir;
    const std::string path = dir / "s.sock";
    bind_unix_socket(path, {});  // closed at once: a stale socket left behind
    std::vector<std::future<int>> racers;
    for (int i = 0; i < 4; ++i) {
      racers.push_back(std::async(std::launch::async, [&] {
        try {
          return bind_unix_socket(path, {}).fd.release();
        } catch (const StartupError&) {
          return -1;
        }
      }));
    }
    int winners = 0;
    std::vector<int> fds;
    for (auto& r : racers) {
      const int fd = r.get();
      if (fd >= 0) {
        ++winners;
        fds.push_back(fd);
      }
    }
    EXPECT_EQ(winners, 1) << "round " << round;
    EXPECT_EQ(probe_path(path), ExistingPath::live_socket);
    for (int fd : fds) ::close(fd);
  }
}

TEST(BindUnixSocket, SetsTheGroup) {
  TempDir dir;
  const std::string path = dir / "g.sock";
  UnixSocketOptions o;
  o.group = ::getegid();
  const BoundUnixSocket s = bind_unix_socket(path, o);
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, ::getegid());
}

TEST(BindUnixSocket, MissingDirectoryNamesThePath) {
  const std::string path = "/nonexistent-dir/s.sock";
  EXPECT_NE(error_of([&] { bind_unix_socket(path, {}); }).find("/nonexistent-dir/s.sock"),
            std::string::npos);
}

}  // namespace
}  // namespace printerfacts

namespace printerfacts {
namespace {

int code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const StartupError& e) {
    return e.code();
  }
  return 0;
}

TEST(CheckSocketCreatable, NamesTheDirectoryAndTheFixWithTheExitStatus) {
  const printerfacts::testing::TempDir dir;
  EXPECT_NO_THROW(check_socket_creatable(dir / "pf.sock", std::nullopt));
  const std::string missing = dir / "missing/pf.sock";
  EXPECT_EQ(error_of([&] { check_socket_creatable(missing, std::nullopt); }),
            "cannot create the socket " + missing + ": the directory " + (dir / "missing") +
                " does not exist; create it (under systemd: RuntimeDirectory=) or choose another "
                "--listen path");
  EXPECT_EQ(code_of([&] { check_socket_creatable(missing, std::nullopt); }), 66);
  std::ofstream(dir / "file") << "x";
  EXPECT_EQ(code_of([&] { check_socket_creatable(dir / "file/pf.sock", std::nullopt); }), 66);
  // The same words when the socket is really created there.
  EXPECT_EQ(error_of([&] { bind_unix_socket(missing, {}); }),
            error_of([&] { check_socket_creatable(missing, std::nullopt); }));
}

TEST(SocketDirectory, IsWhereTheFileGoes) {
  EXPECT_EQ(socket_directory("pf.sock"), ".");
  EXPECT_EQ(socket_directory("/pf.sock"), "/");
  EXPECT_EQ(socket_directory("/run/printerfacts/http.sock"), "/run/printerfacts");
  EXPECT_EQ(socket_directory("./a/pf.sock"), "./a");
}

}  // namespace
}  // namespace printerfacts
