#!/usr/bin/env bash
# tests/web/nginx.sh start|stop DIR - the nginx of the web tests on 127.0.0.1, an
# ephemeral port, document root DIR/root, the same settings as tests/tu_http.c (ETag on,
# /status500), plus /auth/ (Basic authentication: user "user", password "p@ss"), /slow/
# (1 byte a second: a transfer that stays in flight for the cancel and timeout tests;
# nginx counts the head's bytes too, so the head itself takes minutes), /stall/ (the
# first KiB at once, then 1 byte a second: the low-speed test), /trickle/ (the head and
# 600 bytes at once, then 50 bytes a second: a slow body that ends, for
# check-browser-cap.sh), the hostile answers of test_web_http.c (below), and every response
# with the COOP/COEP headers a pthread page needs.
# `start` prints the base URL ("http://127.0.0.1:PORT") once nginx answers, and writes to
# DIR/ports nine more ports it serves the same on (each port a host of its own to the
# per-host cap of test_web_http.c).
set -euo pipefail
cmd=$1 dir=$2
nginx_bin=${ASSET_TEST_NGINX:-/usr/sbin/nginx}
case "$cmd" in
start)
  mkdir -p "$dir/root"
  chmod 755 "$dir" "$dir/root" # nginx workers may run as another user
  printf 'user:{PLAIN}p@ss\n' > "$dir/htpasswd" # /auth/: Basic authentication
  for attempt in 1 2 3 4 5; do
    ports=$(python3 -c 'import socket
s=[socket.socket() for _ in range(10)]
for x in s: x.bind(("127.0.0.1",0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
    port=${ports%% *} more=${ports#* }
    listen_more=$(for p in $more; do printf 'listen 127.0.0.1:%s; ' "$p"; done)
    cat > "$dir/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  etag on;
  types { application/json json; text/plain txt; text/html html; application/javascript js;
          application/wasm wasm; image/png png; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$port; $listen_more
    root $dir/root;
    add_header Cross-Origin-Opener-Policy same-origin;
    add_header Cross-Origin-Embedder-Policy require-corp;
    location ~ /status500\$ { return 500; } # also under tu_http.c's t<n>/
    location /slow/ { limit_rate 1; }
    location /stall/ { limit_rate_after 1k; limit_rate 1; }
    # the head and the first 600 bytes at once (limit_rate counts the head's bytes too:
    # under /slow/ the head alone took minutes), then 50 bytes a second: a 500-byte file
    # ends in about 4 s (check-browser-cap.sh's slow bodies)
    location /trickle/ { limit_rate_after 600; limit_rate 50; }
    # test_web_http.c's answers nginx gives only when told: a 304 nobody asked for, a
    # body without ETag or Last-Modified, one with a fixed ETag whatever was asked, a stored gzip object sent coded whatever was
    # asked, and moved<sfx>.txt, which redirects to target<sfx>.txt once moved<sfx>.flag
    # exists (<sfx>: the suite's mode, so that _st and _mt share the root)
    location = /always304 { return 304; }
    # an ETag of 9000 bytes (9 x \$k): sent back whole, past nginx's 8 KiB header line
    location ~ /etag-huge\$ { set \$k "$(printf 'e%.0s' $(seq 1000))";
      add_header ETag "\\"\$k\$k\$k\$k\$k\$k\$k\$k\$k\\""; return 200 "hello"; }
    # a 304 to any If-None-Match, naming the ETag "v2"; else 200 "one" with the ETag "v1"
    location = /etag-moved {
      if (\$http_if_none_match) { add_header ETag '"v2"'; return 304; }
      add_header ETag '"v1"'; return 200 "one";
    }
    # ETags with bytes past ASCII (a UTF-8 e-acute and a Latin-1 one; 2,100 Latin-1
    # bytes): a 304 to an If-None-Match that sends them back as they were, else 200 "hi"
    location = /etag-bytes { set \$t '"caf$(printf '\303\251')-$(printf '\351')"';
      if (\$http_if_none_match = \$t) { add_header ETag \$t; return 304; }
      add_header ETag \$t; return 200 "hi"; }
    location = /etag-bytes-long { set \$t '"$(printf '\351%.0s' $(seq 2100))"';
      if (\$http_if_none_match = \$t) { add_header ETag \$t; return 304; }
      add_header ETag \$t; return 200 "hi"; }
    location ~ /novalidator[^/]*\.cnt\$ { return 200 "same bytes"; }
    location ~ /unconditional[^/]*\.cnt\$ { add_header ETag '"fixed"'; return 200 "same bytes"; }
    location /auth/ { auth_basic "test"; auth_basic_user_file $dir/htpasswd; }
    location /gz/ { add_header Content-Encoding gzip; }
    location = /partial { return 206 "abc"; } # a part, never asked for (no Range)
    location = /loop { return 302 /loop; } # a redirect to itself: fetch gives up after 20
    location /compress/ { add_header Content-Encoding compress; } # a coding fetch passes on coded
    # hop<sfx>.dep redirects into a directory: hopdir<sfx>/scene.dep
    location ~ ^/hop(\w*)\.dep\$ { return 302 /hopdir\$1/scene.dep; }
    location ~ ^/moved(\w*)\.txt\$ {
      if (-f \$document_root/moved\$1.flag) { return 302 /target\$1.txt; }
    }
  }
}
CONF
    "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" 2>>"$dir/start.log" || continue
    for _ in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "$more" > "$dir/ports"
        echo "http://127.0.0.1:$port"
        exit 0
      fi
      sleep 0.05
    done
    "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" -s stop 2>/dev/null || true
  done
  echo "nginx.sh: nginx would not start (see $dir/start.log)" >&2
  exit 1
  ;;
stop)
  [ -f "$dir/nginx.pid" ] && "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" -s stop 2>/dev/null || true
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
