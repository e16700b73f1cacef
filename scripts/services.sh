#!/usr/bin/env bash
# Local services for Credit Steward: Apache Kafka (KRaft, single node), ClickHouse,
# Prometheus and Alertmanager, on loopback only, with their data and logs under the
# git-ignored cache. Installs what is missing, starts each service in the background,
# waits until it answers, and stops it by PID.
#
#   scripts/services.sh up        install if needed, start, wait until every service answers
#   scripts/services.sh down      stop every service (by PID)
#   scripts/services.sh status    one line per service; exit 1 if any is down
#   scripts/services.sh install   install packages (the services' and Chromium, which the
#                                 report test runs) and fetch the Kafka jars only
#   scripts/services.sh reset     down, then delete all service data (not the jar cache)
#   scripts/services.sh stop NAME / start NAME   one service (kafka, clickhouse, prometheus,
#                                 alertmanager); the outage tests use them
#   scripts/services.sh pause NAME / resume NAME   freeze one service (SIGSTOP to its
#                                 process group) and let it go on (SIGCONT): a broker
#                                 that stops answering without closing its connections
#   scripts/services.sh kafka-scram-user NAME PASSWORD   add or change a SCRAM-SHA-256 user
#                                 of the SASL_SSL listener (127.0.0.1:9094)
#   scripts/services.sh console-consumer TOPIC [ARGS...]   Kafka's own console consumer on
#                                 TOPIC of the local broker, committed messages only, from
#                                 the beginning; ARGS go to it (e.g. --timeout-ms 5000)
#
# Environment: STEWARD_CACHE (default <repo>/.cache); SERVICE_WAIT_SECS (default 90): how long
# `up` waits, in all, for the started services to answer before it fails naming the service.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONF="$ROOT/scripts/services"
CACHE=${STEWARD_CACHE:-$ROOT/.cache}
SVC="$CACHE/services"
WAIT=${SERVICE_WAIT_SECS:-90}
SERVICES=(kafka clickhouse prometheus alertmanager)

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- install
need_apt=()
command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || need_apt+=(clickhouse-server clickhouse-client)
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
command -v java >/dev/null 2>&1 || need_apt+=(default-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# Not a service: rdkafka's TLS is built against the system's OpenSSL.
pkg-config --exists openssl 2>/dev/null || need_apt+=(libssl-dev pkg-config)
# Not a service: ClickHouse's HTTPS certificate is made with the openssl tool.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# Not a service: the report test renders the HTML report in headless Chromium.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# Not a service: the report's PDF is checked with poppler (tests/report.rs runs pdftoppm and
# pdftotext), and its Chinese needs a CJK font.
for tool in pdftoppm pdftotext; do
  command -v "$tool" >/dev/null 2>&1 || need_apt+=(poppler-utils)
done
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need_apt+=(fonts-wqy-microhei)
# Not a service: a serve test that times out shows every thread's stack, and one that crashes
# the stack it crashed on, read from its core (tests/support/serve.rs).
command -v gdb >/dev/null 2>&1 || need_apt+=(gdb)
# Where the kernel pipes cores to systemd-coredump, that test reads the core with
# coredumpctl (package systemd-coredump). Not installed elsewhere: the package sets
# core_pattern to itself, which would take over how this machine writes cores.
case "$(cat /proc/sys/kernel/core_pattern 2>/dev/null)" in
  '|'*systemd-coredump*) command -v coredumpctl >/dev/null 2>&1 || need_apt+=(systemd-coredump) ;;
esac

install_packages() {
  if ((${#need_apt[@]})); then
    # Two missing programs may come from one package: list it once.
    mapfile -t need_apt < <(printf '%s\n' "${need_apt[@]}" | sort -u)
    log "installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null ||
      die "apt-get install ${need_apt[*]} failed"
    # The packages' init scripts may start system-wide daemons; ours run from the cache.
    for s in clickhouse-server prometheus prometheus-alertmanager; do
      [ -x "/etc/init.d/$s" ] && "/etc/init.d/$s" stop >/dev/null 2>&1 || true
    done
  fi
}

kafka_libs() {
  local stamp libs
  stamp=$(sha256sum "$CONF/kafka/pom.xml" | cut -c1-16)
  libs="$CACHE/kafka-libs/$stamp"
  if [ ! -f "$libs/.complete" ]; then
    log "fetching the Kafka broker jars from Maven Central into $libs"
    mkdir -p "$libs"
    (cd "$CONF/kafka" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$libs" \
      >"$CACHE/kafka-libs/mvn.log" 2>&1) ||
      die "kafka: mvn dependency:copy-dependencies failed; see $CACHE/kafka-libs/mvn.log"
    touch "$libs/.complete"
  fi
  printf '%s' "$libs"
}

install_all() {
  mkdir -p "$SVC"
  install_packages
  kafka_libs >/dev/null
}

# ---------------------------------------------------------------- process helpers
pidfile() { printf '%s/%s/pid' "$SVC" "$1"; }
logfile() { printf '%s/%s/%s.log' "$SVC" "$1" "$1"; }

running() {
  local pf pid
  pf=$(pidfile "$1")
  [ -f "$pf" ] || return 1
  pid=$(cat "$pf")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

port_free() { ! ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }

start_bg() { # name, command...
  local name=$1
  shift
  local lf
  lf=$(logfile "$name")
  mkdir -p "$(dirname "$lf")"
  : >"$lf"
  setsid nohup "$@" >>"$lf" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

# Checks that a service answers; returns 0 when ready.
ready() {
  case $1 in
    kafka) grep -q 'Kafka Server started' "$(logfile kafka)" 2>/dev/null &&
      (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null ;;
    clickhouse) [ "$(curl -fsS --max-time 2 http://127.0.0.1:8123/ping 2>/dev/null)" = "Ok." ] ;;
    prometheus) curl -fsS --max-time 2 http://127.0.0.1:9090/-/ready >/dev/null 2>&1 ;;
    alertmanager) curl -fsS --max-time 2 http://127.0.0.1:9093/-/ready >/dev/null 2>&1 ;;
  esac
}

wait_ready() { # name deadline(SECONDS)
  local name=$1 deadline=$2
  while ! ready "$name"; do
    if ! running "$name"; then
      tail -n 20 "$(logfile "$name")" >&2 || true
      die "$name exited during start-up; log: $(logfile "$name")"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$(logfile "$name")" >&2 || true
      die "$name did not answer within ${WAIT}s; log: $(logfile "$name")"
    fi
    sleep 0.5
  done
  log "$name is up (pid $(cat "$(pidfile "$name")"))"
}

check_port() { # name port
  port_free "$2" || die "$1: port 127.0.0.1:$2 is already in use by another process (not started by this script); stop it or run 'scripts/services.sh down'"
}

# ---------------------------------------------------------------- per service
# The SASL_SSL listener's TLS material, made once with the JDK's keytool: a test CA
# (`ca.pem`, what clients trust) and the broker's key with a certificate for 127.0.0.1 and
# localhost signed by it (`broker.p12`). `other-ca.pem` is a CA nobody signed with (the
# untrusted-certificate test).
kafka_tls() {
  local tls=$1 pass
  [ -f "$tls/broker.p12" ] && [ -f "$tls/other-ca.pem" ] && return 0
  rm -rf "$tls" && mkdir -p "$tls"
  pass=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  printf '%s' "$pass" >"$tls/password"
  local kt=(keytool -storetype PKCS12 -storepass "$pass" -keyalg RSA -keysize 2048 -validity 3650)
  {
    "${kt[@]}" -genkeypair -alias ca -dname CN=steward-test-ca -ext bc:c -keystore "$tls/ca.p12"
    keytool -exportcert -rfc -alias ca -keystore "$tls/ca.p12" -storepass "$pass" >"$tls/ca.pem"
    "${kt[@]}" -genkeypair -alias broker -dname CN=localhost -keystore "$tls/broker.p12"
    keytool -certreq -alias broker -keystore "$tls/broker.p12" -storepass "$pass" |
      keytool -gencert -alias ca -keystore "$tls/ca.p12" -storepass "$pass" -rfc -validity 3650 \
        -ext SAN=ip:127.0.0.1,dns:localhost >"$tls/broker.pem"
    keytool -importcert -noprompt -alias ca -file "$tls/ca.pem" -keystore "$tls/broker.p12" \
      -storepass "$pass"
    keytool -importcert -alias broker -file "$tls/broker.pem" -keystore "$tls/broker.p12" \
      -storepass "$pass"
    "${kt[@]}" -genkeypair -alias other -dname CN=other-ca -ext bc:c -keystore "$tls/other.p12"
    keytool -exportcert -rfc -alias other -keystore "$tls/other.p12" -storepass "$pass" \
      >"$tls/other-ca.pem"
  } >"$tls/keytool.log" 2>&1 || die "kafka: making the TLS keystore failed; log: $tls/keytool.log"
}

start_kafka() {
  local dir="$SVC/kafka" libs
  libs=$(kafka_libs)
  mkdir -p "$dir/data"
  check_port kafka 9092
  check_port kafka 9094
  check_port kafka 19093
  kafka_tls "$dir/tls"
  sed -e "s#@DATA@#$dir/data#" -e "s#@TLS@#$dir/tls#" -e "s#@TLSPASS@#$(cat "$dir/tls/password")#" \
    "$CONF/kafka/server.properties" >"$dir/server.properties"
  local cp="$libs/*"
  local java_opts=(-Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$CONF/kafka/log4j2.properties")
  if [ ! -f "$dir/data/meta.properties" ]; then
    local id
    id=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>>"$(logfile kafka)" | tail -n 1)
    java "${java_opts[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$id" \
      -c "$dir/server.properties" >"$dir/format.log" 2>&1 ||
      die "kafka: formatting the KRaft storage failed; log: $dir/format.log"
  fi
  start_bg kafka java "${java_opts[@]}" -cp "$cp" kafka.Kafka "$dir/server.properties"
}

# The HTTPS port's TLS material, made once with openssl: a self-signed certificate for
# 127.0.0.1 and localhost (server.pem, the one a client trusts), and a second self-signed
# certificate that signed nothing (other.pem), for the untrusted-certificate test.
clickhouse_tls() {
  local tls=$1 name
  [ -f "$tls/server.pem" ] && [ -f "$tls/other.pem" ] && return 0
  rm -rf "$tls" && mkdir -p "$tls"
  for name in server other; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=steward-test-$name" \
      -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
      -keyout "$tls/$name.key" -out "$tls/$name.pem" >>"$tls/openssl.log" 2>&1 ||
      die "clickhouse: making the TLS certificate failed; log: $tls/openssl.log"
  done
  chmod 600 "$tls"/*.key
}

start_clickhouse() {
  local dir="$SVC/clickhouse" bin
  mkdir -p "$dir"/{data,tmp,user_files,format_schemas,log,etc}
  check_port clickhouse 8123
  check_port clickhouse 8443
  check_port clickhouse 9000
  clickhouse_tls "$dir/tls"
  sed "s#@DIR@#$dir#g" "$CONF/clickhouse/config.xml" >"$dir/etc/config.xml"
  cp "$CONF/clickhouse/users.xml" "$dir/etc/users.xml"
  bin=$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)
  (cd "$dir" && start_bg clickhouse "$bin" --config-file="$dir/etc/config.xml")
}

start_prometheus() {
  local dir="$SVC/prometheus"
  mkdir -p "$dir/data"
  check_port prometheus 9090
  sed "s#@RULES@#$ROOT/dashboards/prometheus/rules#" "$CONF/prometheus/prometheus.yml" >"$dir/prometheus.yml"
  start_bg prometheus prometheus --config.file="$dir/prometheus.yml" \
    --storage.tsdb.path="$dir/data" --web.listen-address=127.0.0.1:9090 \
    --web.enable-lifecycle --storage.tsdb.retention.time=2d
}

start_alertmanager() {
  local dir="$SVC/alertmanager"
  mkdir -p "$dir/data"
  check_port alertmanager 9093
  start_bg alertmanager prometheus-alertmanager --config.file="$CONF/alertmanager/alertmanager.yml" \
    --storage.path="$dir/data" --web.listen-address=127.0.0.1:9093 --cluster.listen-address=
}

# ---------------------------------------------------------------- commands
up() {
  install_all
  local s
  for s in "${SERVICES[@]}"; do
    if running "$s"; then
      log "$s already running (pid $(cat "$(pidfile "$s")"))"
    else
      "start_$s"
    fi
  done
  local deadline=$((SECONDS + WAIT))
  for s in "${SERVICES[@]}"; do wait_ready "$s" "$deadline"; done
}

stop_one() {
  local name=$1 pf pid
  pf=$(pidfile "$name")
  if ! running "$name"; then
    rm -f "$pf"
    return 0
  fi
  pid=$(cat "$pf")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.3; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop in 30s; killing"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pf"
  log "$name stopped"
}

down() {
  local s
  for s in "${SERVICES[@]}"; do stop_one "$s"; done
}

status() {
  local s bad=0
  for s in "${SERVICES[@]}"; do
    if running "$s" && ready "$s"; then
      printf '%-13s up    pid %s\n' "$s" "$(cat "$(pidfile "$s")")"
    elif running "$s"; then
      printf '%-13s starting/unresponsive pid %s  log %s\n' "$s" "$(cat "$(pidfile "$s")")" "$(logfile "$s")"
      bad=1
    else
      printf '%-13s down\n' "$s"
      bad=1
    fi
  done
  return $bad
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  install) install_all ;;
  stop) [[ " ${SERVICES[*]} " == *" ${2:-} "* ]] || die "stop: name one of: ${SERVICES[*]}"; stop_one "$2" ;;
  start)
    [[ " ${SERVICES[*]} " == *" ${2:-} "* ]] || die "start: name one of: ${SERVICES[*]}"
    running "$2" || "start_$2"
    wait_ready "$2" $((SECONDS + WAIT)) ;;
  pause | resume)
    [[ " ${SERVICES[*]} " == *" ${2:-} "* ]] || die "$1: name one of: ${SERVICES[*]}"
    running "$2" || die "$1: $2 is not running"
    signal=STOP
    [ "$1" = resume ] && signal=CONT
    kill -"$signal" -- "-$(cat "$(pidfile "$2")")"
    log "$2 ${1}d" ;;
  reset) down && rm -rf "$SVC" && log "service data removed" ;;
  kafka-scram-user)
    [ -n "${2:-}" ] && [ -n "${3:-}" ] || die "kafka-scram-user: give a name and a password"
    libs=$(kafka_libs)
    java -cp "$libs/*" -Dlog4j2.configurationFile="$CONF/kafka/tools-log4j2.properties" \
      kafka.admin.ConfigCommand --bootstrap-server 127.0.0.1:9092 --alter \
      --add-config "SCRAM-SHA-256=[iterations=4096,password=$3]" \
      --entity-type users --entity-name "$2" >/dev/null ;;
  console-consumer)
    [ -n "${2:-}" ] || die "console-consumer: name a topic"
    libs=$(kafka_libs)
    exec java -cp "$libs/*" -Dlog4j2.configurationFile="$CONF/kafka/tools-log4j2.properties" \
      org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server 127.0.0.1:9092 \
      --isolation-level read_committed --from-beginning --topic "$2" "${@:3}" ;;
  *) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
