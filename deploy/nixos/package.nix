# printerfacts built from this repository with nixpkgs' toolchain.
{ lib, stdenv, cmake, ninja, pkg-config, boost, systemd, cli11, spdlog, fmt, prometheus-cpp, gtest }:

stdenv.mkDerivation {
  pname = "printerfacts";
  version = "0.1.0";
  src = lib.cleanSource ../..;

  nativeBuildInputs = [ cmake ninja pkg-config ];
  buildInputs = [ boost systemd cli11 spdlog fmt prometheus-cpp gtest ];
  cmakeFlags = [ "-DPRINTERFACTS_BUILD_TESTS=OFF" "-DCMAKE_BUILD_TYPE=Release" ];

  meta = with lib; {
    description = "Random printer facts over HTTP on a Unix domain socket";
    license = licenses.mit;
    platforms = platforms.linux;
    mainProgram = "printerfacts";
  };
}
