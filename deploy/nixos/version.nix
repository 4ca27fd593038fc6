# The version of debian/changelog's newest entry, "printerfacts (0.2.0) unstable; ...": declared
# once, there, for the Debian package, the binary and this Nix package.
{ lib }:
let
  head = builtins.head (lib.splitString "\n" (builtins.readFile ../../debian/changelog));
  m = builtins.match "printerfacts \\(([^)]+)\\) .*" head;
in
if m == null then throw "debian/changelog: the first line must be \"printerfacts (VERSION) ...\"" else builtins.head m
