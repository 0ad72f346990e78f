# A throwaway influxd for the benchmark scripts; sourced, not run. Its config, data and log live in
# a directory the caller gives (and removes); both ports are free loopback ports; logging is quiet.
#   influxd_prepare DIR            writes DIR/influxdb.conf; sets influxd_url
#   influxd_start DIR [PREFIX...]  starts it, behind PREFIX if given (e.g. taskset -c 0), and waits
#                                  until /ping answers; sets influxd_pid. Exits the script, with
#                                  the end of influxd's log, when it does not answer within 60 s.
# INFLUXD names the binary (default /usr/bin/influxd). Needs curl and python3.

influxd_prepare() {
    local dir=$1 http_port rpc_port
    read -r http_port rpc_port < <(python3 -c '
import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')
    mkdir -p "$dir"
    cat >"$dir/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc_port"
[meta]
  dir = "$dir/meta"
  logging-enabled = false
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[http]
  bind-address = "127.0.0.1:$http_port"
  log-enabled = false
[logging]
  suppress-logo = true
  level = "warn"
CONF
    influxd_url="http://127.0.0.1:$http_port"
}

influxd_start() {
    local dir=$1
    shift
    "$@" "${INFLUXD:-/usr/bin/influxd}" -config "$dir/influxdb.conf" >>"$dir/influxd.log" 2>&1 &
    influxd_pid=$!
    for _ in $(seq 600); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "$influxd_url/ping") == 204 ]] && return 0
        kill -0 "$influxd_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "influxd did not start:" >&2
    tail -20 "$dir/influxd.log" >&2
    kill "$influxd_pid" 2>/dev/null
    exit 1
}
