#!/usr/bin/env bash
# Installs what kpipe's tests need besides npm packages, when it is missing:
#   - Java 17+ and Maven (the real Apache Kafka broker the tests start),
#   - PostgreSQL server binaries (initdb, pg_ctl: the real PostgreSQL the tests start),
#   - Chromium (the dashboard's browser test).
# As root on Debian/Ubuntu it installs them with apt-get; otherwise it says what to install
# and fails, because the tests do not skip what they cannot run.
set -euo pipefail

missing=()
have_java17() {
  command -v java >/dev/null 2>&1 || return 1
  local v
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\)[."].*/\1/p' | head -n 1)
  [ "${v:-0}" -ge 17 ] 2>/dev/null
}
have_initdb() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

have_java17 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
have_initdb || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  echo "test dependencies: Java 17+, Maven, PostgreSQL and Chromium are present"
  exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test dependencies: installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "test dependencies: installed ${missing[*]}"
else
  echo "test dependencies missing: ${missing[*]}" >&2
  echo "install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}; macOS: brew install openjdk@17 maven postgresql@15 chromium) and run the tests again" >&2
  exit 1
fi
