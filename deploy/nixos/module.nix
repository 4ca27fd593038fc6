# NixOS module: services.printerfacts. Socket activation (systemd owns the socket, with the mode
# and group given here), the hardened service of deploy/systemd, and an nginx virtual host that
# proxies to the socket; optionally a metrics socket that nginx exposes on loopback only.
#
#   imports = [ ./deploy/nixos/module.nix ];
#   services.printerfacts = { enable = true; domain = "facts.example.org"; useACME = true; };
{ config, lib, pkgs, ... }:

let
  cfg = config.services.printerfacts;
  inherit (lib) mkEnableOption mkOption mkIf mkRenamedOptionModule types escapeShellArgs;
  # The proxy's group when the module's nginx (or another) runs; otherwise root's, so that until
  # a group is chosen only root may connect (mode 0660, owner root).
  nginxOn = config.services.nginx.enable || cfg.domain != null;
  trustFlags = lib.optionals nginxOn [ "--trust-forwarded" "uid:${config.services.nginx.user}" ];

  hardening = {
    # No package creates a user on NixOS: this one exists only while the service runs.
    DynamicUser = true;
    UMask = "0077";
    PrivateNetwork = true;
    RestrictAddressFamilies = [ "AF_UNIX" ];
    IPAddressDeny = "any";
    NoNewPrivileges = true;
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    RestrictSUIDSGID = true;
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    RestrictRealtime = true;
    RestrictNamespaces = true;
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    PrivateUsers = true;
    PrivateIPC = true;
    ProtectHostname = true;
    ProtectClock = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectProc = "invisible";
    RemoveIPC = true;
    SystemCallArchitectures = "native";
    SystemCallFilter = [ "@system-service" "~@privileged" ];
    SystemCallErrorNumber = "EPERM";
  };
in
{
  # The original printerfacts module called the socket path sockPath.
  imports = [
    (mkRenamedOptionModule [ "services" "printerfacts" "sockPath" ] [ "services" "printerfacts" "socketPath" ])
  ];

  options.services.printerfacts = {
    enable = mkEnableOption "printerfacts, random printer facts over a Unix socket";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      description = "The printerfacts package to run.";
    };

    socketPath = mkOption {
      type = types.str;
      default = "/run/printerfacts/http.sock";
      description = "Path of the Unix socket systemd creates and passes to the service.";
    };

    socketMode = mkOption {
      type = types.strMatching "0?[0-7]{3}";
      default = "0660";
      description = "Permission bits of the socket. Only the owner (root) and socketGroup may connect.";
    };

    socketGroup = mkOption {
      type = types.str;
      default = if nginxOn then config.services.nginx.group else "root";
      defaultText = lib.literalExpression
        ''if config.services.nginx.enable || domain != null then config.services.nginx.group else "root"'';
      description = "Group of the socket: the reverse proxy's group, so that it alone may connect.";
    };

    domain = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "facts.example.org";
      description = "When set, an nginx virtual host for this name proxies to the socket.";
    };

    useACME = mkOption {
      type = types.bool;
      default = false;
      description = "Obtain a certificate for domain with ACME and redirect HTTP to HTTPS.";
    };

    metrics = {
      enable = mkEnableOption "the metrics-only socket (/metrics and /healthz)";
      socketPath = mkOption {
        type = types.str;
        default = "/run/printerfacts/metrics.sock";
        description = "Path of the metrics socket.";
      };
      nginxPort = mkOption {
        type = types.port;
        default = 9113;
        description = "Loopback port on which nginx proxies /metrics to the metrics socket, for Prometheus.";
      };
    };

    extraFlags = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--threads" "2" "--log-format" "json" ];
      description = "Extra command line flags (see printerfacts --help).";
    };
  };

  config = mkIf cfg.enable {
    systemd.sockets.printerfacts = {
      description = "printerfacts HTTP socket";
      wantedBy = [ "sockets.target" ];
      # No partOf = [ "printerfacts.service" ]: a restart of the service would close this socket
      # (and RemoveOnStop delete its file), failing the requests that arrive meanwhile.
      socketConfig = {
        ListenStream = cfg.socketPath;
        FileDescriptorName = "http";
        SocketUser = "root";
        SocketGroup = cfg.socketGroup;
        SocketMode = cfg.socketMode;
        DirectoryMode = "0755";
        Backlog = 4096;
        RemoveOnStop = true;
      };
    };

    systemd.sockets.printerfacts-metrics = mkIf cfg.metrics.enable {
      description = "printerfacts metrics socket";
      wantedBy = [ "sockets.target" ];
      socketConfig = {
        ListenStream = cfg.metrics.socketPath;
        FileDescriptorName = "metrics";
        Service = "printerfacts.service";
        SocketUser = "root";
        SocketGroup = cfg.socketGroup;
        SocketMode = "0660";
        DirectoryMode = "0755";
        RemoveOnStop = true;
      };
    };

    systemd.services.printerfacts = {
      description = "printerfacts: random printer facts over a Unix socket";
      requires = [ "printerfacts.socket" ];
      after = [ "printerfacts.socket" ] ++ lib.optional cfg.metrics.enable "printerfacts-metrics.socket";
      wants = lib.optional cfg.metrics.enable "printerfacts-metrics.socket";
      serviceConfig = hardening // {
        Type = "notify";
        NotifyAccess = "main";
        WatchdogSec = "30s";
        # The client nginx forwards (X-Forwarded-For, which recommendedProxySettings sets) is
        # believed from nginx's user alone; from any other peer the header is ignored.
        ExecStart = "${cfg.package}/bin/printerfacts ${escapeShellArgs (trustFlags ++ cfg.extraFlags)}";
        # Reload: check what the reload will read with the same arguments, so that
        # `systemctl reload` fails on a configuration the server would refuse; then SIGHUP.
        ExecReload = [
          "${cfg.package}/bin/printerfacts --check-reload ${escapeShellArgs (trustFlags ++ cfg.extraFlags)}"
          "${pkgs.coreutils}/bin/kill -HUP $MAINPID"
        ];
        Restart = "on-failure";
        # A wrong configuration (78) or flag (64) fails the same way every time.
        RestartPreventExitStatus = "64 78";
        RestartSec = "1s";
        TimeoutStopSec = "20s";
        KillMode = "mixed";
        LimitNOFILE = 65536;
      };
    };

    services.nginx = mkIf (cfg.domain != null) {
      enable = true;
      recommendedProxySettings = true;
      # The request ID printerfacts echoes and logs ("rid="), in nginx's log too.
      commonHttpConfig = ''
        log_format printerfacts_rid '$remote_addr - $remote_user [$time_local] "$request" '
                                    '$status $body_bytes_sent rid=$request_id';
      '';
      upstreams.printerfacts = {
        servers."unix:${cfg.socketPath}" = { };
        # Idle upstream connections close on nginx's side first: below printerfacts'
        # --idle-timeout (60s), so nginx never reuses one that printerfacts is closing.
        extraConfig = "keepalive 32; keepalive_timeout 50s;";
      };
      upstreams.printerfacts_metrics = mkIf cfg.metrics.enable {
        servers."unix:${cfg.metrics.socketPath}" = { };
        extraConfig = "keepalive 2; keepalive_timeout 50s;";
      };
      virtualHosts.${cfg.domain} = {
        enableACME = cfg.useACME;
        forceSSL = cfg.useACME;
        locations."= /metrics".return = "404";
        locations."/" = {
          proxyPass = "http://printerfacts";
          extraConfig = ''
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Request-ID $request_id;
            access_log /var/log/nginx/printerfacts.access.log printerfacts_rid;
            proxy_next_upstream error timeout http_502 http_503;
          '';
        };
      };
      virtualHosts."printerfacts-metrics" = mkIf cfg.metrics.enable {
        listen = [ { addr = "127.0.0.1"; port = cfg.metrics.nginxPort; } ];
        locations."= /metrics" = {
          proxyPass = "http://printerfacts_metrics";
          extraConfig = ''
            allow 127.0.0.1;
            deny all;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
          '';
        };
      };
    };
  };
}
