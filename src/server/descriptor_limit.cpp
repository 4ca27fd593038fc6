#include "server/descriptor_limit.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "server/server.hpp"

namespace printerfacts {

std::size_t descriptors_needed(const Options& options, unsigned threads) {
  const std::size_t listeners = options.listen.size() + options.metrics_listen.size();
  return options.max_connections + kMonitoringConnections + listeners * (threads + 1) +
         8 * static_cast<std::size_t>(threads) + 64;
}

DescriptorLimit raise_descriptor_limit(std::size_t needed, unsigned max_connections) {
  DescriptorLimit r;
  r.needed = needed;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return r;
  r.soft_before = r.soft = limit.rlim_cur;
  r.hard = limit.rlim_max;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    const rlim_t wanted = std::min<rlim_t>(needed, limit.rlim_max);
    limit.rlim_cur = wanted;
    if (::setrlimit(RLIMIT_NOFILE, &limit) == 0) r.soft = wanted;
  }
  if (r.soft != RLIM_INFINITY && r.soft < needed) {
    // What is left for connections once the rest is counted.
    const std::size_t overhead = needed - max_connections;
    const std::size_t fit = r.soft > overhead ? r.soft - overhead : 0;
    r.warning = fmt::format(
        "--max-connections {} needs about {} descriptors, but the limit is {} (hard {}): past "
        "about {} connections accept() fails with EMFILE until one closes. Raise LimitNOFILE= "
        "(ulimit -n) or lower --max-connections",
        max_connections, needed, r.soft, r.hard, fit);
  }
  return r;
}

}  // namespace printerfacts
