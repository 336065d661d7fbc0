# Sourced by deploy/local/up, deploy/local/test and .ci/run. Gives the suite a Postgres and a NATS
# (JetStream) of its own on a machine that may have neither:
#
#   install_infra      installs Debian's postgresql and nats-server packages when missing
#   ensure_postgres    a project-owned Postgres cluster, created on first use, started if stopped
#   ensure_nats        a project-owned nats-server with JetStream, started if stopped
#   stop_infra         stops both
#
# deploy/local/infra is the same as a command (start, stop, env).
#
# Nothing of the machine's own services is touched: the cluster and the NATS store live in the state
# directory below, listen on 127.0.0.1 only, on ports of their own, so the system's Postgres (Debian
# creates one on port 5432 that asks for a password on 127.0.0.1) is left as it is. The cluster has a
# generated superuser password (kept in the state directory, readable by its owner only) and asks every
# TCP client for it (scram-sha-256); no authentication setting is weakened anywhere.
#
# After ensure_postgres / ensure_nats, AUTH_SUITE_DATABASE_URL and AUTH_SUITE_NATS_URL hold the URLs.
#
# Settings (environment):
#   AUTH_SUITE_STATE_DIR   where the cluster, the NATS store, logs and the password live
#                          (default ~/.local/share/auth-suite; /var/lib/auth-suite when run as root,
#                          because Postgres refuses to run as root and runs as the `postgres` user then)
#   AUTH_SUITE_PG_PORT     the cluster's port (default 55432)
#   AUTH_SUITE_NATS_PORT   the NATS client port (default 44222)

AUTH_SUITE_PG_PORT="${AUTH_SUITE_PG_PORT:-55432}"
AUTH_SUITE_NATS_PORT="${AUTH_SUITE_NATS_PORT:-44222}"
if [ -z "${AUTH_SUITE_STATE_DIR:-}" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    AUTH_SUITE_STATE_DIR=/var/lib/auth-suite
  else
    AUTH_SUITE_STATE_DIR="${XDG_DATA_HOME:-$HOME/.local/share}/auth-suite"
  fi
fi

infra_log() { echo "[infra] $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# Waits (up to 30 s) for a TCP port to accept connections.
wait_for_port() {
  local what=$1 port=$2 log=$3
  for _ in $(seq 1 300); do
    port_open 127.0.0.1 "$port" && return 0
    sleep 0.1
  done
  infra_log "$what did not come up on 127.0.0.1:$port; the end of $log:"
  tail -n 20 "$log" >&2 || true
  return 1
}

# The newest installed Postgres server's binaries (initdb, pg_ctl), or nothing.
postgres_bin_dir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

nats_server_bin() {
  command -v nats-server 2>/dev/null || { [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server; }
}

# Installs the Debian packages of whatever is missing. As root directly, otherwise through sudo.
install_infra() {
  local missing=()
  { [ -n "$(postgres_bin_dir)" ] && [ -x "$(postgres_bin_dir)/initdb" ]; } || missing+=(postgresql postgresql-contrib)
  [ -n "$(nats_server_bin)" ] || missing+=(nats-server)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { infra_log "please install: ${missing[*]} (Debian packages)"; return 1; }
    sudo=(sudo)
  fi
  infra_log "installing ${missing[*]} (Debian packages)"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Runs a Postgres tool as the cluster's owner: the `postgres` user when we are root.
as_cluster_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

ensure_postgres() {
  local bin data password_file log url password
  bin="$(postgres_bin_dir)"
  [ -n "$bin" ] || { infra_log "Postgres is not installed (run install_infra)"; return 1; }
  data="$AUTH_SUITE_STATE_DIR/postgres"
  password_file="$AUTH_SUITE_STATE_DIR/postgres.password"
  log="$AUTH_SUITE_STATE_DIR/postgres.log"
  mkdir -p "$AUTH_SUITE_STATE_DIR"
  # Only its owner reads the state directory; the `postgres` user (when we are root) may pass through it.
  if [ "$(id -u)" -eq 0 ]; then chmod 711 "$AUTH_SUITE_STATE_DIR"; else chmod 700 "$AUTH_SUITE_STATE_DIR"; fi
  touch "$log"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$log"

  if [ ! -s "$data/PG_VERSION" ]; then
    infra_log "creating the suite's Postgres cluster in $data (port $AUTH_SUITE_PG_PORT)"
    rm -rf "$data"
    (umask 077; od -An -tx1 -N24 /dev/urandom | tr -d ' \n' > "$password_file")
    mkdir -p "$data"
    local pwfile="$data.pwfile"
    (umask 077; cp "$password_file" "$pwfile")
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres:postgres "$data" "$pwfile"
      chmod 700 "$data"
    fi
    as_cluster_owner "$bin/initdb" -D "$data" -U postgres --pwfile="$pwfile" \
      --auth-local=scram-sha-256 --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$log" 2>&1 \
      || { rm -f "$pwfile"; infra_log "initdb failed; see $log"; tail -n 20 "$log" >&2; return 1; }
    rm -f "$pwfile"
    # Loopback only, a port of its own, its socket in its own directory (not /var/run/postgresql,
    # which belongs to the system's clusters). Connections: the tests run many suites at once.
    cat >>"$data/postgresql.conf" <<EOF

# --- auth suite (deploy/local/infra.sh) ---
listen_addresses = '127.0.0.1'
port = $AUTH_SUITE_PG_PORT
unix_socket_directories = '$data'
max_connections = 400
shared_buffers = 256MB
EOF
  fi

  password="$(cat "$password_file")"
  url="postgres://postgres:$password@127.0.0.1:$AUTH_SUITE_PG_PORT/postgres"
  export AUTH_SUITE_DATABASE_URL="$url"

  if ! port_open 127.0.0.1 "$AUTH_SUITE_PG_PORT"; then
    infra_log "starting the suite's Postgres ($data)"
    # A pid file left by a killed server would stop pg_ctl; the server checks it is really stale.
    as_cluster_owner "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null \
      || { infra_log "Postgres did not start; the end of $log:"; tail -n 20 "$log" >&2; return 1; }
  fi
  wait_for_port Postgres "$AUTH_SUITE_PG_PORT" "$log"
}

ensure_nats() {
  local bin store log
  bin="$(nats_server_bin)"
  [ -n "$bin" ] || { infra_log "nats-server is not installed (run install_infra)"; return 1; }
  store="$AUTH_SUITE_STATE_DIR/nats"
  log="$AUTH_SUITE_STATE_DIR/nats.log"
  mkdir -p "$store"
  export AUTH_SUITE_NATS_URL="nats://127.0.0.1:$AUTH_SUITE_NATS_PORT"
  if ! port_open 127.0.0.1 "$AUTH_SUITE_NATS_PORT"; then
    infra_log "starting the suite's NATS with JetStream ($store)"
    # Detached from this shell (its own session), so it outlives the command that started it.
    setsid "$bin" -a 127.0.0.1 -p "$AUTH_SUITE_NATS_PORT" -js -sd "$store" \
      -P "$AUTH_SUITE_STATE_DIR/nats.pid" -l "$log" </dev/null >/dev/null 2>&1 &
  fi
  wait_for_port NATS "$AUTH_SUITE_NATS_PORT" "$log"
}

stop_infra() {
  local bin data="$AUTH_SUITE_STATE_DIR/postgres"
  bin="$(postgres_bin_dir)"
  if [ -n "$bin" ] && [ -s "$data/postmaster.pid" ]; then
    as_cluster_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null && infra_log "Postgres stopped"
  fi
  if [ -s "$AUTH_SUITE_STATE_DIR/nats.pid" ]; then
    kill "$(cat "$AUTH_SUITE_STATE_DIR/nats.pid")" 2>/dev/null && infra_log "NATS stopped"
    rm -f "$AUTH_SUITE_STATE_DIR/nats.pid"
  fi
}
