# Sourced by deploy/local/up, deploy/local/test and .ci/run: makes sure the local Postgres and NATS
# (with JetStream) are reachable, starting them when they are installed but stopped.

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

ensure_postgres() {
  port_open 127.0.0.1 5432 && return 0
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "[infra] starting Postgres" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  fi
  for _ in $(seq 1 60); do port_open 127.0.0.1 5432 && return 0; sleep 0.5; done
  echo "[infra] Postgres is not reachable on 127.0.0.1:5432" >&2
  return 1
}

ensure_nats() {
  port_open 127.0.0.1 4222 && return 0
  if [ -x /usr/sbin/nats-server ]; then
    echo "[infra] starting NATS with JetStream" >&2
    mkdir -p /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
      -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  fi
  for _ in $(seq 1 60); do port_open 127.0.0.1 4222 && return 0; sleep 0.5; done
  echo "[infra] NATS is not reachable on 127.0.0.1:4222" >&2
  return 1
}
