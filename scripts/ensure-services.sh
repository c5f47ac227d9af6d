#!/usr/bin/env bash
# Start the local PostgreSQL cluster and Mosquitto broker when installed but not listening (CI and dev boxes).
set -u
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# PostGIS is an optional accelerator (nearby search); install it beside the cluster when apt can, so its path
# is tested too. Without it everything still works on the portable path.
if [ -d /etc/postgresql ] && [ "$(id -u)" = 0 ]; then
  version="$(ls /etc/postgresql | head -1)"
  if ! dpkg -s "postgresql-$version-postgis-3" >/dev/null 2>&1; then
    echo "installing PostGIS for PostgreSQL $version"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "postgresql-$version-postgis-3" >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "postgresql-$version-postgis-3" >/dev/null 2>&1; } ||
      echo "note: PostGIS could not be installed; the nearby search is tested on its portable path only"
  fi
fi
if ! listening 5432 && [ -d /etc/postgresql ]; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! listening 1883 && command -v mosquitto >/dev/null; then
  echo "starting Mosquitto"
  mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
fi
for _ in $(seq 1 30); do listening 5432 && break; sleep 1; done
listening 5432 || echo "warning: PostgreSQL is not reachable on 127.0.0.1:5432 (the PostgreSQL tests will fail in CI)"
exit 0
