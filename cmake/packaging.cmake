# Installation layout: the binary (CMakeLists.txt), its man page, the systemd units, the nginx
# sites, the configuration, the alert rules and dashboard. The Debian package (debian/, built with
# debhelper: scripts/package) and the Nix package (deploy/nixos/package.nix) both install this.
set(PF_GEN ${CMAKE_CURRENT_BINARY_DIR}/packaging)
file(MAKE_DIRECTORY ${PF_GEN})

# The man page with the version filled in, compressed as Debian wants man pages: gzip -9n (no
# timestamp).
configure_file(docs/printerfacts.1 ${PF_GEN}/printerfacts.1 @ONLY)
add_custom_command(OUTPUT ${PF_GEN}/printerfacts.1.gz
  COMMAND gzip -9nc ${PF_GEN}/printerfacts.1 > ${PF_GEN}/printerfacts.1.gz
  DEPENDS ${PF_GEN}/printerfacts.1 VERBATIM)
add_custom_target(printerfacts_docs ALL DEPENDS ${PF_GEN}/printerfacts.1.gz)

# Every destination is relative to the install prefix unless a cache variable makes it absolute,
# so `cmake --install build --prefix DIR` (a Nix store path, a home directory) works without
# privileges. debian/rules (and the release preset) set Debian 12's absolute places:
# CMAKE_INSTALL_SYSCONFDIR=/etc and PRINTERFACTS_SYSTEMD_UNIT_DIR=/lib/systemd/system.
set(PRINTERFACTS_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "where the systemd units are installed (relative: under the install prefix)")
install(FILES ${PF_GEN}/printerfacts.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES
  deploy/systemd/printerfacts.socket deploy/systemd/printerfacts-metrics.socket
  deploy/systemd/printerfacts.service deploy/systemd/printerfacts-standalone.service
  deploy/systemd/printerfacts@.socket deploy/systemd/printerfacts@.service
  DESTINATION ${PRINTERFACTS_SYSTEMD_UNIT_DIR})
install(FILES deploy/nginx/printerfacts.conf DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/nginx/sites-available
        RENAME printerfacts)
install(FILES deploy/nginx/printerfacts-scaled.conf
        DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/nginx/sites-available RENAME printerfacts-scaled)
# Front ends that name the client in a PROXY protocol header (--proxy-protocol): examples to
# copy, not configuration the package enables.
install(FILES deploy/haproxy/printerfacts.cfg deploy/nginx/printerfacts-stream.conf
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
# For the monitoring: alert rules (promtool-tested) and the Grafana dashboard.
install(FILES deploy/prometheus/printerfacts.rules.yml deploy/grafana/printerfacts.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/printerfacts)
# Rotation of --access-log-file's file (missingok: nothing to do until it is used).
install(FILES deploy/logrotate/printerfacts DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/logrotate.d)
install(FILES deploy/printerfacts.default DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/default
        RENAME printerfacts)
install(FILES deploy/printerfacts.toml DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/printerfacts)
