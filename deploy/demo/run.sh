#!/usr/bin/env bash
# Runs jinglepush for real on this machine: a local Prosody (with the files of
# deploy/prosody) and redis-server, jinglepush with dry-run pushes, then a test
# call from alice@localhost to bob@localhost, who is offline. It prints the
# VoIP push that call produced and keeps everything running for your own
# clients (localhost:5222, accounts alice and bob, password "demo") until
# Ctrl-C.
#
# Usage: deploy/demo/run.sh            (from the repository root; make demo)
# Environment: JINGLEPUSH_DEMO_DIR (default .demo), DEMO_C2S_PORT (5222),
# DEMO_COMPONENT_PORT (5347), DEMO_REDIS_PORT (6390), DEMO_HTTP (127.0.0.1:9110).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${JINGLEPUSH_DEMO_DIR:-$root/.demo}
c2s_port=${DEMO_C2S_PORT:-5222}
comp_port=${DEMO_COMPONENT_PORT:-5347}
redis_port=${DEMO_REDIS_PORT:-6390}
http=${DEMO_HTTP:-127.0.0.1:9110}
domain=localhost
component=push.localhost
password=demo

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# 1. Debian packages, when missing.
missing=()
command -v prosody >/dev/null || missing+=(prosody)
[ -d /usr/lib/prosody/modules/mod_firewall ] || missing+=(prosody-modules)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
fi
command -v go >/dev/null || { echo "Go is needed to build jinglepush (https://go.dev/dl/)" >&2; exit 1; }

for p in "$c2s_port" "$comp_port" "$redis_port" "${http##*:}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "port $p on 127.0.0.1 is taken; set DEMO_*_PORT (see the top of $0)" >&2
    exit 1
  fi
done

rm -rf "$dir"
mkdir -p "$dir/prosody/data" "$dir/prosody/certs" "$dir/redis" # certs: empty, so Prosody finds nothing to complain about
pids=()
cleanup() {
  trap - EXIT INT TERM
  say "stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# 2. Prosody: a minimal loopback config that includes the operator files.
say "starting Prosody (c2s 127.0.0.1:$c2s_port, component 127.0.0.1:$comp_port)"
secret=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
for f in jinglepush.cfg.lua jinglepush.pfw; do
  sed -e "s/push\.example\.com/$component/g" -e "s/example\.com/$domain/g" -e "s/change-me/$secret/g" \
    "$root/deploy/prosody/$f" > "$dir/prosody/$f"
done
{
  [ "$(id -u)" -eq 0 ] && echo 'run_as_root = true'
  cat <<LUA
pidfile = "$dir/prosody/prosody.pid"
data_path = "$dir/prosody/data"
plugin_paths = { }
log = { { levels = { min = "info" }, to = "file", filename = "$dir/prosody/prosody.log" } }
interfaces = { "127.0.0.1" }
c2s_ports = { $c2s_port }
component_interfaces = { "127.0.0.1" }
component_ports = { $comp_port }
modules_disabled = { "s2s" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "tls"; }

VirtualHost "$domain"

Include "jinglepush.cfg.lua"
LUA
} > "$dir/prosody/prosody.cfg.lua"
for u in alice bob; do
  prosodyctl --config "$dir/prosody/prosody.cfg.lua" register "$u" "$domain" "$password"
done
prosody --config "$dir/prosody/prosody.cfg.lua" -F > "$dir/prosody/console.log" 2>&1 &
pids+=($!)

say "starting redis-server (127.0.0.1:$redis_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir/redis" > "$dir/redis/redis.log" 2>&1 &
pids+=($!)

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1; see the logs in $dir" >&2
  exit 1
}
wait_port "$c2s_port"; wait_port "$comp_port"; wait_port "$redis_port"

# 3. jinglepush, pushes in dry-run mode: logged, not sent.
say "building and starting jinglepush (dry-run pushes)"
(cd "$root" && go build -o "$dir/jinglepush" ./cmd/jinglepush && go build -o "$dir/jinglepush-call" ./cmd/jinglepush-call)
cat > "$dir/config.toml" <<TOML
[xmpp]
server = "127.0.0.1:$comp_port"
domain = "$component"
secret = "$secret"
served_domains = ["$domain"]

[redis]
addrs = ["127.0.0.1:$redis_port"]

[apns]
dry_run = true

[[apns.apps]]
bundle_id = "com.example.chat"

[calls]
wake_on_publish = false   # Prosody publishes even for live phones: rely on the firewall copies

[http]
listen = "$http"
TOML
"$dir/jinglepush" -config "$dir/config.toml" > "$dir/jinglepush.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fs "http://$http/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://$http/readyz" || { echo "jinglepush is not ready:"; cat "$dir/jinglepush.log"; exit 1; }

# 4. The test call.
say "placing a test call: alice@$domain calls bob@$domain, who is offline"
"$dir/jinglepush-call" -server "127.0.0.1:$c2s_port" -component "$component" \
  -caller "alice@$domain" -callee "bob@$domain" -password "$password"

say "the VoIP push jinglepush produced (apns.dry_run: logged, not sent)"
for _ in $(seq 1 50); do
  grep -q 'apns_push_type=voip' "$dir/jinglepush.log" && break
  sleep 0.1
done
line=$(grep 'apns_push_type=voip' "$dir/jinglepush.log" | tail -n 1) || { echo "no VoIP push was logged:"; cat "$dir/jinglepush.log"; exit 1; }
echo "$line" | tr ' ' '\n' | grep -E '^(apns_|token=|environment=)' | sed 's/^/  /'
payload=${line#*payload=}
payload=${payload%\"}; payload=${payload#\"}; payload=${payload//\\\"/\"}
echo "  body:"
if command -v python3 >/dev/null; then echo "$payload" | python3 -m json.tool | sed 's/^/    /'; else echo "    $payload"; fi

say "jinglepush keeps running"
cat <<TXT
  XMPP:     127.0.0.1:$c2s_port, accounts alice@$domain and bob@$domain, password "$password" (no TLS)
  component $component on 127.0.0.1:$comp_port; metrics http://$http/metrics
  logs:     $dir/jinglepush.log, $dir/prosody/prosody.log
  ask it (another terminal, README "Operating it"):
            $dir/jinglepush trace -config $dir/config.toml bob@$domain [CALL-ID]
            $dir/jinglepush devices -config $dir/config.toml bob@$domain
Press Ctrl-C to stop. Following the jinglepush log:
TXT
tail -n 0 -f "$dir/jinglepush.log" &
pids+=($!)
wait "${pids[2]}"
