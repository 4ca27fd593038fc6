# printerfacts built from this repository with nixpkgs' toolchain.
{ lib, stdenv, cmake, ninja, pkg-config, boost, systemd, liburing, cli11, tomlplusplus, spdlog, fmt, prometheus-cpp, gtest }:

stdenv.mkDerivation {
  pname = "printerfacts";
  # The version is declared once, in debian/changelog's newest entry.
  version = import ./version.nix { inherit lib; };
  # The repository without what a checkout accumulates: build trees, editor and VCS files,
  # result links. Only what the build reads goes into the store.
  src = lib.cleanSourceWith {
    name = "printerfacts-source";
    src = lib.cleanSource ../..;
    filter = path: type:
      let base = baseNameOf path; in
      !(type == "directory" && builtins.elem base [ "build" ".cache" "node_modules" "__pycache__" ])
      && !(lib.hasPrefix "result" base);
  };

  nativeBuildInputs = [ cmake ninja pkg-config ];
  buildInputs = [ boost systemd liburing cli11 tomlplusplus spdlog fmt prometheus-cpp gtest ];
  # Install destinations are relative to the prefix by default (GNUInstallDirs): the units go to
  # $out/lib/systemd/system and the example configuration to $out/etc.
  cmakeFlags = [ "-DPRINTERFACTS_BUILD_TESTS=OFF" "-DCMAKE_BUILD_TYPE=Release" ];

  meta = with lib; {
    description = "Random printer facts over HTTP on a Unix domain socket";
    license = licenses.mit;
    platforms = platforms.linux;
    mainProgram = "printerfacts";
  };
}
