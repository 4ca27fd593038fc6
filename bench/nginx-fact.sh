# Sourced by the bench scripts. nginx_fact_conf DIR SOCKET prints an nginx configuration that
# answers GET /fact itself (`return 200`, no access log) on the Unix socket SOCKET, in one
# process (master_process off), so a tool can attach to that process alone. bench.py writes the
# same server block for its side-by-side runs, with a master and one worker.
nginx_fact_conf() {
  local dir=$1 sock=$2
  cat <<CONF
worker_processes 1;
daemon off;
master_process off;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log crit;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
    uwsgi_temp_path $dir; scgi_temp_path $dir;
    server {
        listen unix:$sock;
        location = /fact { default_type "text/plain; charset=utf-8"; return 200 "Printers can smell fear, but only in cyan.\\n"; }
    }
}
CONF
}
