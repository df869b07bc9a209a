#!/usr/bin/env bash
# Make sure a RabbitMQ broker answers for werkbrug.
#
# - answers already (at the host and port of AMQP_URL, default 127.0.0.1:5672): nothing to do;
# - installed but stopped: start it (rabbitmq-server -detached) and wait until it is up;
# - absent: install it from Debian's packages (needs root), then start it.
#
# Then it checks the management command works so tests can inspect queues. Idempotent.
set -euo pipefail

url="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
hostport="${url#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"
[ "$port" = "$hostport" ] && port=5672

answers() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

if answers; then
  echo "rabbitmq: answering at $host:$port"
  exit 0
fi

case "$host" in
  127.*|localhost|::1) ;;
  *) echo "rabbitmq: nothing answers at $host:$port and it is not this machine; start it there" >&2; exit 1 ;;
esac

if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/sbin/rabbitmq-server ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "rabbitmq: not installed; install the Debian package rabbitmq-server (as root) or set AMQP_URL" >&2
    exit 1
  fi
  echo "rabbitmq: installing rabbitmq-server from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d may forbid starting services inside containers; we start it ourselves below.
  apt-get install -y -qq rabbitmq-server >/dev/null
fi
PATH="$PATH:/usr/sbin"

echo "rabbitmq: starting the local broker"
if ! rabbitmq-server -detached >/dev/null 2>&1; then
  service rabbitmq-server start >/dev/null 2>&1 || true
fi
for _ in $(seq 1 90); do
  if answers; then
    rabbitmqctl await_startup >/dev/null 2>&1 || true
    echo "rabbitmq: up at $host:$port"
    exit 0
  fi
  sleep 1
done
echo "rabbitmq: did not come up within 90 s; see /var/log/rabbitmq/" >&2
exit 1
