# Installation layout and the Debian package (cpack -G DEB): the binary, its man page, the
# systemd units, the nginx sites, /etc/default/printerfacts and maintainer scripts that create
# the system user.
set(PF_DEBIAN ${CMAKE_CURRENT_SOURCE_DIR}/deploy/debian)
set(PF_GEN ${CMAKE_CURRENT_BINARY_DIR}/packaging)
file(MAKE_DIRECTORY ${PF_GEN})

# Debian wants man pages and changelogs compressed with gzip -9n (no timestamp).
foreach(in printerfacts.1 changelog)
  set(out ${in}.gz)
  add_custom_command(OUTPUT ${PF_GEN}/${out}
    COMMAND gzip -9nc ${PF_DEBIAN}/${in} > ${PF_GEN}/${out}
    DEPENDS ${PF_DEBIAN}/${in} VERBATIM)
  list(APPEND PF_COMPRESSED ${PF_GEN}/${out})
endforeach()
add_custom_target(printerfacts_docs ALL DEPENDS ${PF_COMPRESSED})

# Every destination is relative to the install prefix unless a cache variable makes it absolute,
# so `cmake --install build --prefix DIR` (a Nix store path, a home directory) works without
# privileges. The release preset, which the Debian package is built from, sets Debian 12's
# absolute places: CMAKE_INSTALL_SYSCONFDIR=/etc and PRINTERFACTS_SYSTEMD_UNIT_DIR=/lib/systemd/system.
set(PRINTERFACTS_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "where the systemd units are installed (relative: under the install prefix)")
install(FILES ${PF_GEN}/printerfacts.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PF_DEBIAN}/copyright ${PF_GEN}/changelog.gz DESTINATION ${CMAKE_INSTALL_DOCDIR})
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
install(FILES ${PF_DEBIAN}/printerfacts.default DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/default
        RENAME printerfacts)
install(FILES deploy/printerfacts.toml DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/printerfacts)

# dpkg keeps an administrator's changes to these across upgrades.
set(PF_CONFFILES default/printerfacts nginx/sites-available/printerfacts
    nginx/sites-available/printerfacts-scaled printerfacts/printerfacts.toml logrotate.d/printerfacts)
list(TRANSFORM PF_CONFFILES PREPEND "/etc/")
list(JOIN PF_CONFFILES "\n" PF_CONFFILES_TEXT)
file(WRITE ${PF_GEN}/conffiles "${PF_CONFFILES_TEXT}\n")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME printerfacts)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_CONTACT "printerfacts maintainers <maintainers@printerfacts.invalid>")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION httpd)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://printerfacts.invalid/")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "random printer facts over HTTP on a Unix domain socket")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "printerfacts is a small HTTP service meant to run behind
nginx with no network port: it listens on a Unix domain socket whose
permissions decide who may connect. It ships systemd units with socket
activation and hardening, an nginx site and Prometheus metrics.")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "nginx | nginx-light, prometheus")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PF_DEBIAN}/postinst ${PF_DEBIAN}/postrm ${PF_DEBIAN}/prerm ${PF_GEN}/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
