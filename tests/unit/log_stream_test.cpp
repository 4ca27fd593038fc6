#include "log/log_stream.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace printerfacts {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The notices a stream gave, collected from whichever thread gave them.
struct Notices {
  std::mutex mutex;
  std::vector<std::string> said;
  LogStream::Notice sink() {
    return [this](const std::string& m) {
      std::lock_guard lock(mutex);
      said.push_back(m);
    };
  }
  std::vector<std::string> get() {
    std::lock_guard lock(mutex);
    return said;
  }
};

// A pipe whose reader the test controls; its buffer is made as small as the kernel allows
// (one page) and filled, so the next write blocks until the test reads.
struct StalledPipe {
  StalledPipe() {
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    ::fcntl(fds[1], F_SETPIPE_SZ, 4096);
    const std::string page(static_cast<std::size_t>(::fcntl(fds[1], F_GETPIPE_SZ)), 'x');
    EXPECT_EQ(::write(fds[1], page.data(), page.size()), static_cast<ssize_t>(page.size()));
  }
  ~StalledPipe() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  // Reads everything there is, without waiting; returns it.
  std::string drain_some() {
    std::string out;
    char buf[65536];
    ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    return out;
  }
  int fds[2] = {-1, -1};
};

TEST(LogStream, WritesWholeLinesInTheOrderHandedOver) {
  testing::TempDir dir;
  const std::string path = dir / "log";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  {
    LogStream stream(fd, "access", nullptr, true);
    std::string lines;
    for (int i = 0; i < 1000; ++i) {
      lines = "line " + std::to_string(i) + "\n";
      stream.submit(lines);
      EXPECT_TRUE(lines.empty()) << "handed over";
    }
    EXPECT_TRUE(stream.drain(Clock::now() + 10s));
    for (std::size_t r = 0; r < kLogDropReasons.size(); ++r)
      EXPECT_EQ(stream.dropped(static_cast<LogDrop>(r)), 0u) << kLogDropReasons[r];
  }
  ::close(fd);
  std::ifstream in(path);
  std::string line;
  int expected = 0;
  while (std::getline(in, line)) EXPECT_EQ(line, "line " + std::to_string(expected++));
  EXPECT_EQ(expected, 1000);
}

// A pipe with room: submit() writes itself (one system call, no hand-over); what the pipe will
// not take at once goes to the writer, after what was written, so the order holds whichever
// path each byte took.
TEST(LogStream, WritesAtOnceWhatThePipeTakesAndHandsOverTheRestInOrder) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  ::fcntl(fds[1], F_SETPIPE_SZ, 4096);
  const auto room = static_cast<std::size_t>(::fcntl(fds[1], F_GETPIPE_SZ));
  std::string expected;
  {
    LogStream stream(fds[1], "access", nullptr, true);
    std::string lines = "first\n";
    stream.submit(lines);
    EXPECT_TRUE(lines.empty());
    char buf[16];
    ASSERT_EQ(::read(fds[0], buf, sizeof buf),
              6);  // (the budget test counts that it took one call)
    // More than the pipe holds: a part now, the rest through the writer once it is read.
    for (int i = 0; static_cast<std::size_t>(i) < 2 * room / 10; ++i) {
      lines = fmt::format("line {:04}\n", i);
      expected += lines;
      stream.submit(lines);
    }
    std::string got;
    std::vector<char> chunk(65536);
    while (got.size() < expected.size()) {
      const ssize_t n = ::read(fds[0], chunk.data(), chunk.size());
      ASSERT_GT(n, 0);
      got.append(chunk.data(), static_cast<std::size_t>(n));
    }
    EXPECT_EQ(got, expected);
    EXPECT_TRUE(stream.drain(Clock::now() + 10s));
    EXPECT_EQ(stream.dropped(LogDrop::queue_full), 0u);
  }
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(LogStream, AStalledReaderNeverBlocksTheCallerAndLossIsCountedAndToldOnce) {
  StalledPipe pipe;
  Notices notices;
  LogStream stream(pipe.fds[1], "access", notices.sink(), true, 64 * 1024);
  const std::string line(99, 'a');
  const auto started = Clock::now();
  for (int i = 0; i < 5000; ++i) {  // 500 KB: far more than the pipe and the queue hold
    std::string lines = line + "\n";
    stream.submit(lines);
  }
  // Handing over never waited for the pipe (a generous bound: it is microseconds per call).
  EXPECT_LT(Clock::now() - started, 5s);
  const std::uint64_t dropped = stream.dropped(LogDrop::queue_full);
  EXPECT_GT(dropped, 4000u);
  EXPECT_LT(dropped, 5000u) << "what fits in the queue is kept";
  auto said = notices.get();
  ASSERT_EQ(said.size(), 1u) << "one notice per episode";
  EXPECT_NE(said[0].find("logging to its descriptor (access): not read fast enough"),
            std::string::npos)
      << said[0];

  // The reader comes back: everything queued is written, and the end of the episode is told
  // with the count.
  std::string read;
  const auto deadline = Clock::now() + 30s;
  while (Clock::now() < deadline) {
    read += pipe.drain_some();
    if (stream.wait_written(Clock::now() + 10ms)) break;
  }
  ASSERT_TRUE(stream.wait_written(Clock::now() + 10s));
  read += pipe.drain_some();
  std::string more = line + "\n";
  stream.submit(more);  // the first write after the episode ended
  ASSERT_TRUE(stream.wait_written(Clock::now() + 10s));
  said = notices.get();
  ASSERT_EQ(said.size(), 2u);
  EXPECT_EQ(said[1], "logging to its descriptor (access) works again; " + std::to_string(dropped) +
                         " line(s) were dropped");
  read += pipe.drain_some();
  const std::size_t kept_lines =
      static_cast<std::size_t>(std::count(read.begin(), read.end(), '\n'));
  EXPECT_EQ(kept_lines, 5000 - dropped + 1) << "every line not counted as dropped was written";
  EXPECT_TRUE(stream.drain(Clock::now() + 10s));
}

TEST(LogStream, DrainGivesUpOnAStuckWriterAtTheDeadline) {
  StalledPipe pipe;
  LogStream stream(pipe.fds[1], "access", nullptr, true);
  for (int i = 0; i < 100; ++i) {
    std::string lines = std::string(200, 'b') + "\n";
    stream.submit(lines);
  }
  const auto started = Clock::now();
  EXPECT_FALSE(stream.drain(Clock::now() + 200ms));
  const auto took = Clock::now() - started;
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 5s);
  EXPECT_GT(stream.dropped(LogDrop::exit), 0u) << "what was still queued is counted";
  EXPECT_FALSE(stream.drain(Clock::now() + 10s)) << "later calls give the same answer";
  std::string late = "late\n";
  const auto exit_before = stream.dropped(LogDrop::exit);
  stream.submit(late);  // after drain: dropped, never blocks
  EXPECT_EQ(stream.dropped(LogDrop::exit), exit_before + 1);
}

TEST(LogStream, AFullDiskIsCountedAsNoSpaceAndToldOnce) {
  const int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  Notices notices;
  {
    LogStream stream(fd, "access", notices.sink(), true);
    for (int i = 0; i < 50; ++i) {
      std::string lines = "one\ntwo\n";
      stream.submit(lines);
      ASSERT_TRUE(stream.wait_written(Clock::now() + 10s));
    }
    EXPECT_EQ(stream.dropped(LogDrop::no_space), 100u);
    EXPECT_EQ(stream.dropped(LogDrop::queue_full), 0u);
    EXPECT_TRUE(stream.drain(Clock::now() + 10s));
  }
  ::close(fd);
  const auto said = notices.get();
  ASSERT_EQ(said.size(), 1u);
  EXPECT_NE(said[0].find("write failed (No space left on device)"), std::string::npos) << said[0];
}

TEST(LogStream, AClosedReaderIsCountedAsClosed) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  ::close(fds[0]);  // SIGPIPE is ignored by the server; here the test runner ignores it too
  ::signal(SIGPIPE, SIG_IGN);
  LogStream stream(fds[1], "access", nullptr, true);
  std::string lines = "a\nb\nc";
  stream.submit(lines);
  EXPECT_TRUE(stream.drain(Clock::now() + 10s));
  EXPECT_EQ(stream.dropped(LogDrop::closed), 3u) << "a cut last line counts as one";
  ::close(fds[1]);
}

TEST(LogStream, CountLines) {
  EXPECT_EQ(count_lines(""), 0u);
  EXPECT_EQ(count_lines("a\n"), 1u);
  EXPECT_EQ(count_lines("a\nb"), 2u);
  EXPECT_EQ(count_lines("\n\n"), 2u);
}

}  // namespace
}  // namespace printerfacts
