#!/usr/bin/env bash
# Development TLS certificates for the docker compose deployment (`make up` runs this first).
#
#   infra/tls/make-certs.sh [DIR]      (default var/tls; nothing is committed: /var/ is git-ignored)
#
# Writes a private CA (ca.pem; its key ca.key stays in DIR) and, signed by it, a server certificate
# for the broker (rabbitmq.pem, rabbitmq.key; names rabbitmq, rabbitmq-1..3 of the `cluster` profile,
# localhost) and one for MongoDB
# (mongo.pem = certificate + key, as mongod wants it; names mongo, localhost). The services trust
# ca.pem and check the server's name. Idempotent: existing files are kept (delete DIR to renew).
#
# The keys are readable by the containers' own users (rabbitmq and mongodb, uid 999), so they are
# mode 0644 here: development only. Production brings certificates from its own CA and mounts them
# at the same paths.
set -euo pipefail
dir="${1:-var/tls}"
days=825
mkdir -p "$dir"
cd "$dir"

if [ ! -f ca.pem ]; then
  openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days 3650 -subj "/CN=werkbrug development CA" \
    -keyout ca.key -out ca.pem 2>/dev/null
  chmod 600 ca.key
fi

server() {  # name, file stem, more names
  local name="$1" stem="$2" more=""
  shift 2
  for other in "$@"; do more="$more,DNS:$other"; done
  [ -f "$stem.crt" ] && return 0
  openssl req -newkey rsa:3072 -sha256 -nodes -subj "/CN=$name" -keyout "$stem.key" -out "$stem.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' "$name" "$more" \
    > "$stem.ext"
  openssl x509 -req -in "$stem.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" -sha256 \
    -extfile "$stem.ext" -out "$stem.crt" 2>/dev/null
  rm -f "$stem.csr" "$stem.ext"
  chmod 644 "$stem.key" "$stem.crt"
}

server rabbitmq rabbitmq rabbitmq-1 rabbitmq-2 rabbitmq-3  # one certificate for the single node and the cluster's
cp rabbitmq.crt rabbitmq.pem
server mongo mongo
cat mongo.crt mongo.key > mongo.pem
chmod 644 mongo.pem rabbitmq.pem ca.pem
echo "tls: certificates in $dir (CA ca.pem)"
