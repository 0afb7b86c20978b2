# Packaging beyond the CMake package: pkg-config file, man page, systemd units, example
# environment files, and CPack (`cpack -G DEB` in the build directory -> vtunnel and vtunnel-dev
# .deb files). Included from the top-level CMakeLists.txt after GNUInstallDirs.
#
# Components: `runtime` (programs, man page, units, examples) -> package vtunnel;
#             `dev` (headers, static libraries, CMake and pkg-config files) -> vtunnel-dev.

# --- pkg-config: relocatable (prefix found from the .pc file's own place), so the same file works
# after `cmake --install --prefix ANYWHERE` and inside the .deb. The libraries are static only, so
# their dependencies go in Requires (not .private): a plain `pkg-config --libs vtunnel` must bring
# liburing, Botan and fmt, and the headers include Botan's and fmt's. Boost and nlohmann_json are
# header-only and used only inside our .cpp files.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(VTUNNEL_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH VTUNNEL_PC_UP "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
  string(REGEX REPLACE "/$" "" VTUNNEL_PC_UP "${VTUNNEL_PC_UP}")
  set(VTUNNEL_PC_PREFIX "\${pcfiledir}/${VTUNNEL_PC_UP}")
endif()
# A sanitizer build's libraries need the sanitizer runtime in whatever links them.
set(VTUNNEL_PC_SANITIZE "")
if(VTUNNEL_SANITIZE)
  set(VTUNNEL_PC_SANITIZE " -fsanitize=${VTUNNEL_SANITIZE}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/vtunnel.pc.in ${PROJECT_BINARY_DIR}/vtunnel.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/vtunnel.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# --- man page (gzipped for the package, as Debian policy asks; man reads both).
configure_file(${PROJECT_SOURCE_DIR}/man/vtunnel.1.in ${PROJECT_BINARY_DIR}/man/vtunnel.1 @ONLY)
file(ARCHIVE_CREATE OUTPUT ${PROJECT_BINARY_DIR}/man/vtunnel.1.gz PATHS ${PROJECT_BINARY_DIR}/man/vtunnel.1
  FORMAT raw COMPRESSION GZip)
install(FILES ${PROJECT_BINARY_DIR}/man/vtunnel.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT runtime)
foreach(alias vtunnel-server vtunnel-client)
  file(WRITE ${PROJECT_BINARY_DIR}/man/${alias}.1 ".so man1/vtunnel.1\n")
  install(FILES ${PROJECT_BINARY_DIR}/man/${alias}.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT runtime)
endforeach()

# --- systemd units. ExecStart names the installed program, so the units are written at install
# time with the prefix in force then (`cmake --install --prefix P` -> P/bin/vtunnel; the .deb ->
# /usr/bin/vtunnel). They go to <prefix>/lib/systemd/system (systemd reads /usr/lib/... and
# /usr/local/lib/...). Environment files stay in /etc/vtunnel whatever the prefix.
set(VTUNNEL_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
  "Where the systemd units are installed, relative to the install prefix")
set(VTUNNEL_UNITS vtunnel-server.service vtunnel-client.service vtunnel-client@.service)
set(VTUNNEL_UNIT_SOURCES "")
foreach(unit ${VTUNNEL_UNITS})
  list(APPEND VTUNNEL_UNIT_SOURCES ${PROJECT_SOURCE_DIR}/packaging/systemd/${unit}.in)
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/install-units.cmake.in ${PROJECT_BINARY_DIR}/install-units.cmake @ONLY)
install(SCRIPT ${PROJECT_BINARY_DIR}/install-units.cmake COMPONENT runtime)
install(FILES packaging/env/server.env packaging/env/client.env
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples COMPONENT runtime)

# --- CPack: `cpack -G DEB` (or `cpack -G DEB --config BUILD/CPackConfig.cmake -B OUTDIR`).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME vtunnel)
set(CPACK_PACKAGE_VENDOR "vtunnel")
set(CPACK_PACKAGE_CONTACT "vtunnel maintainers <vtunnel-maintainers@users.noreply.github.com>")
# DESTDIR staging, so install scripts see CMAKE_INSTALL_PREFIX=/usr (the units' ExecStart);
# with CPACK_SET_DESTDIR the prefix comes from CPACK_INSTALL_PREFIX.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)   # programs without debug info in the package
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME vtunnel)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION net)
# Depends from the programs' dynamic libraries (dpkg-shlibdeps, from dpkg-dev):
# libbotan-2-19, liburing2, libfmt9, libstdc++6, libgcc-s1, libc6.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
# Descriptions: first line is the synopsis, then paragraphs (CPack indents them). No
# CPACK_PACKAGE_DESCRIPTION_SUMMARY, else CPack puts it before both packages' descriptions.
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION "reverse tunnel over WebSocket (SSH inside)
vtunnel exposes services of a machine behind NAT or a firewall on a public
machine: the client connects out to the server over WebSocket (ws:// or
wss://) and carries TCP connections to its local services through SSH
channels. Wire-compatible with the Go vtunnel. C++20 on io_uring.

This package has the programs (vtunnel, vtunnel-server, vtunnel-client), the
man page and systemd units (vtunnel-server.service, vtunnel-client.service,
vtunnel-client@.service) reading /etc/vtunnel/*.env.")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME vtunnel-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "liburing-dev, libbotan-2-dev, libfmt-dev, nlohmann-json3-dev, libboost-dev")
set(CPACK_DEBIAN_DEV_DESCRIPTION "reverse tunnel over WebSocket - static libraries and headers
The vtunnel libraries (server, client, SSH, WebSocket, io_uring runtime) as
static libraries with headers, a CMake package (find_package(vtunnel)) and a
pkg-config file (vtunnel.pc).")
include(CPack)
