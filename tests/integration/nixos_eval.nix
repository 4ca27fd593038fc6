# Evaluates deploy/nixos/module.nix with nixpkgs' own module system (lib.evalModules), without
# the rest of nixpkgs: the few NixOS options the module sets are declared here, as loosely as
# NixOS declares them (attribute sets of anything), and pkgs is a stand-in with the two
# derivations the module interpolates. Returns, for each scenario, the values the module gave
# systemd and nginx, as JSON for the test to check.
{ lib, module }:

let
  inherit (lib) mkOption types;
  fakeDrv = name: { type = "derivation"; inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; };
  pkgs = {
    callPackage = _path: _args: fakeDrv "printerfacts-0.1.0";
    coreutils = fakeDrv "coreutils-9.4";
  };
  nixosOptions = {
    options = {
      systemd.sockets = mkOption { type = types.attrsOf types.anything; default = { }; };
      systemd.services = mkOption { type = types.attrsOf types.anything; default = { }; };
      services.nginx = {
        enable = mkOption { type = types.bool; default = false; };
        user = mkOption { type = types.str; default = "nginx"; };
        group = mkOption { type = types.str; default = "nginx"; };
        commonHttpConfig = mkOption { type = types.lines; default = ""; };
        recommendedProxySettings = mkOption { type = types.bool; default = false; };
        upstreams = mkOption { type = types.attrsOf types.anything; default = { }; };
        virtualHosts = mkOption { type = types.attrsOf types.anything; default = { }; };
      };
      # What mkRenamedOptionModule reports through.
      warnings = mkOption { type = types.listOf types.str; default = [ ]; };
      assertions = mkOption { type = types.listOf types.anything; default = [ ]; };
    };
  };
  eval = settings:
    let
      c = (lib.evalModules {
        modules = [ module nixosOptions { config.services.printerfacts = settings; } ];
        specialArgs = { inherit pkgs; };
      }).config;
    in {
      sockets = c.systemd.sockets;
      services = c.systemd.services;
      nginx = { inherit (c.services.nginx) enable upstreams virtualHosts commonHttpConfig; };
      socketPath = c.services.printerfacts.socketPath;
      socketGroup = c.services.printerfacts.socketGroup;
      warnings = c.warnings;
    };
in {
  plain = eval { enable = true; };
  withNginx = eval { enable = true; domain = "facts.example.org"; };
  full = eval {
    enable = true;
    domain = "facts.example.org";
    useACME = true;
    metrics.enable = true;
    extraFlags = [ "--threads" "2" "--log-format" "json" ];
  };
  renamed = eval { enable = true; sockPath = "/run/pf/legacy.sock"; };
  disabled = eval { };
}
