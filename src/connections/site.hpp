// What connections serve with: the content, the routers over it and who may connect. Built at
// start-up and again by every reload (SIGHUP), then shared read-only by all worker threads; a
// request keeps the Site it started with alive until its response is written.
#pragma once

#include <sys/types.h>

#include <memory>
#include <vector>

#include "config/options.hpp"
#include "connections/peer.hpp"
#include "routing/router.hpp"

namespace printerfacts {

/// Unix-socket peers allowed beyond what the file permissions allow (--allow-uid, --allow-gid).
struct PeerAllowList {
  std::vector<uid_t> uids;
  std::vector<gid_t> gids;

  /// True when both lists are empty, or the Unix-socket `peer` runs as a listed user or with a
  /// listed primary group.
  bool allows(const Peer& peer) const;
};

/// Whom the client is learned from, and how (--trust-forwarded, --client-header,
/// --proxy-protocol).
struct Forwarding {
  TrustedProxies trusted;  ///< empty: nobody, the client is never taken from a header
  ClientHeader header = ClientHeader::x_forwarded_for;
  /// Peers whose connections begin with a PROXY protocol header (--proxy-protocol).
  TrustedProxies proxy_senders;
};

/// The content --facts-file and --static-dir name (or the embedded ones). Throws StartupError
/// naming the file or directory at fault.
Content load_content(const SiteOptions& options);

/// What every Site of the process shares, fixed when it starts: a reload changes none of it.
struct SiteFixtures {
  const MetricsSource* metrics = nullptr;  ///< may be null: nothing serves /metrics
  bool metrics_on_main = false;            ///< --metrics-on-main, a restart-only setting
  const Health* health = nullptr;          ///< may be null
};

/// Everything a reload replaces at once. Not copyable or movable: the routers refer to
/// `content`.
class Site {
 public:
  /// The site `options` describe: load_content(), and the peers `ids` (what validate() resolved
  /// of `options`) allows, with what `fixed` says. Built from the reloadable part alone.
  static std::shared_ptr<const Site> load(const SiteOptions& options, const SiteIds& ids,
                                          const SiteFixtures& fixed);

  Site(Content content, PeerAllowList peers, const MetricsSource* metrics, bool metrics_on_main,
       const Health* health, Forwarding forwarding = {});
  Site(const Site&) = delete;
  Site& operator=(const Site&) = delete;

  /// The router of a main listener, or of a metrics-only one.
  const Router& router(bool metrics_listener) const { return metrics_listener ? metrics_ : app_; }

  const Content content;
  const PeerAllowList peers;
  const Forwarding forwarding;

 private:
  const Router app_;
  const Router metrics_;
};

/// A handle to `site` whose reference count lives in a control block of the calling worker's
/// own: every request copies its worker's handle, and incrementing a count that all threads
/// share would bounce one cache line between the cores on every request.
std::shared_ptr<const Site> worker_local(std::shared_ptr<const Site> site);

}  // namespace printerfacts
