#include "connections/site.hpp"

#include <sys/socket.h>

#include <algorithm>

namespace printerfacts {

// Defence in depth: if the socket's mode or group is ever misconfigured, a peer whose kernel-
// recorded credentials (SO_PEERCRED, fixed at connect(), unforgeable) match neither list is
// still turned away, before we parse a single byte it sent.
bool PeerAllowList::allows(const Peer& peer) const {
  if (uids.empty() && gids.empty()) return true;
  if (peer.kind != Peer::Kind::unix_socket) return false;
  return std::find(uids.begin(), uids.end(), peer.uid) != uids.end() ||
         std::find(gids.begin(), gids.end(), peer.gid) != gids.end();
}

Content load_content(const SiteOptions& options) {
  return Content{
      options.facts_file ? Facts::load_file(*options.facts_file) : Facts::embedded(),
      options.static_dir ? StaticFiles::directory(*options.static_dir) : StaticFiles::embedded()};
}

std::shared_ptr<const Site> Site::load(const SiteOptions& options, const SiteIds& ids,
                                       const SiteFixtures& fixed) {
  return std::make_shared<const Site>(
      load_content(options), PeerAllowList{ids.allow_uids, ids.allow_gids}, fixed.metrics,
      fixed.metrics_on_main, fixed.health,
      Forwarding{ids.trusted, ids.client_header, ids.proxy_senders});
}

Site::Site(Content site_content, PeerAllowList allowed, const MetricsSource* metrics,
           bool metrics_on_main, const Health* health, Forwarding forwarded)
    : content(std::move(site_content)),
      peers(std::move(allowed)),
      forwarding(std::move(forwarded)),
      app_(this->content, metrics_on_main ? metrics : nullptr, true, health),
      metrics_(this->content, metrics, false, health) {}

std::shared_ptr<const Site> worker_local(std::shared_ptr<const Site> site) {
  auto holder = std::make_shared<std::shared_ptr<const Site>>(std::move(site));
  const Site* raw = holder->get();
  return std::shared_ptr<const Site>(std::move(holder), raw);  // aliasing: shares holder's count
}

}  // namespace printerfacts
