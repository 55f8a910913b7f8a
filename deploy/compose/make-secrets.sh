#!/bin/sh
# Writes secrets.env beside this script once: parley's message-encryption key and client-token secret (base64
# of 32 random bytes each). Keep the file: a new key cannot read messages stored under the old one.
set -eu
cd "$(dirname "$0")"
if [ -e secrets.env ]; then
  echo "secrets.env exists; keeping it" >&2
  exit 0
fi
umask 077
key() { head -c 32 /dev/urandom | base64; }
printf 'PARLEY_ENCRYPTION_KEY=%s\nPARLEY_AUTH_SECRET=%s\n' "$(key)" "$(key)" > secrets.env
echo "wrote $(pwd)/secrets.env"
