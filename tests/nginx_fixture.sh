#!/usr/bin/env bash
# tests/nginx_fixture.sh start|stop DIR - the nginx of the HTTP suites when they cannot
# start one themselves (the Windows build under wine cannot fork a Linux nginx): CTest
# runs it as the fixture tests http_fixture_start / http_fixture_stop. nginx listens on
# 127.0.0.1 on an ephemeral port with the configuration tests/tu_http.c writes for its
# own nginx (ETag on, /status500, /redirect-ok, /redirect-file, HTTPS with a self-signed
# certificate when openssl is there), document root DIR/root. `start` writes the base
# URL to DIR/base and the HTTPS port (or 0) to DIR/tls_port; the tests find them through
# $ASSET_TEST_HTTP_FIXTURE=DIR (tu_nginx_start). tests/web/nginx.sh is the web's: it
# adds COOP/COEP headers and rate-limited locations and has no redirects or TLS.
set -euo pipefail
cmd=$1 dir=$2
nginx_bin=${ASSET_TEST_NGINX:-/usr/sbin/nginx}
free_port() {
  python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}
case "$cmd" in
start)
  [ -f "$dir/nginx.pid" ] && "$0" stop "$dir"
  rm -rf "$dir"
  mkdir -p "$dir/root"
  tls=0
  if command -v openssl >/dev/null &&
     openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
       -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1; then
    tls=1
  fi
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    tls_port=0 tls_server=""
    if [ $tls = 1 ]; then
      tls_port=$(free_port)
      tls_server="server { listen 127.0.0.1:$tls_port ssl; root $dir/root;
    ssl_certificate $dir/cert.pem; ssl_certificate_key $dir/key.pem; }"
    fi
    cat > "$dir/nginx.conf" <<CONF
daemon on;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  keepalive_requests 100000;
  etag on;
  types { application/json json; text/plain txt; }
  server {
    listen 127.0.0.1:$port;
    root $dir/root;
    location ~ /status500\$ { return 500; }
    location ~ /redirect-file\$ { return 302 file:///etc/passwd; }
    location ~ ^(.*)/redirect-ok\$ { return 302 \$1/hello.txt; }
    # an ETag of 9000 bytes (9 x \$k): sent back whole, past nginx's 8 KiB header line
    location ~ /etag-huge\$ { set \$k "$(printf 'e%.0s' $(seq 1000))";
      add_header ETag "\\"\$k\$k\$k\$k\$k\$k\$k\$k\$k\\""; return 200 "hello"; }
  }
  $tls_server
}
CONF
    "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" 2>>"$dir/start.log" || continue
    for _ in $(seq 1 100); do # bounded: 5 s
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
         { [ $tls_port = 0 ] || (exec 3<>"/dev/tcp/127.0.0.1/$tls_port") 2>/dev/null; }; then
        echo "$tls_port" > "$dir/tls_port"
        echo "http://127.0.0.1:$port" > "$dir/base"
        cat "$dir/base"
        exit 0
      fi
      sleep 0.05
    done
    "$0" stop "$dir"
  done
  echo "nginx_fixture.sh: nginx would not start (see $dir/start.log, $dir/error.log)" >&2
  exit 1
  ;;
stop)
  if [ -f "$dir/nginx.pid" ]; then
    pid=$(cat "$dir/nginx.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    rm -f "$dir/nginx.pid" "$dir/base"
  fi
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
