#include "metrics/process_metrics.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace printerfacts {
namespace {

prometheus::MetricFamily gauge(std::string name, std::string help, double value,
                               prometheus::MetricType type = prometheus::MetricType::Gauge) {
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  return prometheus::MetricFamily{std::move(name), std::move(help), type, {m}};
}

double read_boot_time() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> value;
      return value;
    }
    in.ignore(1 << 16, '\n');
  }
  return 0;
}

// The entries of the directory open as `dir`, from its start, without "." and "..";
// -1 when it cannot be read.
int count_entries(int dir) {
  if (::lseek(dir, 0, SEEK_SET) != 0) return -1;
  alignas(8) std::array<char, 8192> buf;
  int n = 0;
  for (;;) {
    const long got = ::syscall(SYS_getdents64, dir, buf.data(), buf.size());
    if (got < 0) return -1;
    if (got == 0) return n;
    for (long off = 0; off < got;) {
      // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
      const char* entry = buf.data() + off;
      unsigned short reclen = 0;
      std::memcpy(&reclen, entry + 16, sizeof reclen);
      const char* name = entry + 19;
      if (name[0] != '.') ++n;
      off += reclen;
    }
  }
}

}  // namespace

ProcessMetrics::ProcessMetrics()
    : stat_(::open("/proc/self/stat", O_RDONLY | O_CLOEXEC)),
      fds_(::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC)),
      boot_time_(read_boot_time()) {}

std::vector<prometheus::MetricFamily> ProcessMetrics::collect() const {
  std::vector<prometheus::MetricFamily> out;
  std::array<char, 1024> buf;
  const ssize_t n = stat_.valid() ? ::pread(stat_.get(), buf.data(), buf.size() - 1, 0) : -1;
  const std::string stat(buf.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
  // Fields after the command name, which is in parentheses and may contain spaces.
  const auto close = stat.rfind(')');
  if (close != std::string::npos && close + 2 < stat.size()) {
    std::istringstream fields(stat.substr(close + 2));
    std::string f[24];
    for (auto& field : f) fields >> field;
    // f[0] is field 3 (state); utime=14, stime=15, starttime=22, vsize=23, rss=24.
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
    out.push_back(
        gauge("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
              (std::stod(f[11]) + std::stod(f[12])) / ticks, prometheus::MetricType::Counter));
    out.push_back(gauge("process_start_time_seconds",
                        "Start time of the process since unix epoch in seconds.",
                        boot_time_ + std::stod(f[19]) / ticks));
    out.push_back(
        gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", std::stod(f[20])));
    out.push_back(gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                        std::stod(f[21]) * page));
  }
  if (fds_.valid()) {
    int open_fds = 0;
    {
      std::lock_guard lock(fds_mutex_);
      open_fds = count_entries(fds_.get());
    }
    // Every descriptor the process holds, the ones this reads /proc with included (they are
    // the process's, opened once).
    if (open_fds >= 0) {
      out.push_back(gauge("process_open_fds", "Number of open file descriptors.", open_fds));
    }
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    out.push_back(gauge("process_max_fds", "Maximum number of open file descriptors.",
                        static_cast<double>(limit.rlim_cur)));
  }
  return out;
}

}  // namespace printerfacts
