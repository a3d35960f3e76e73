#!/bin/sh
# Entrypoint of the compose stack's kamailio service (docker-compose.yml): fill
# the placeholders of kamailio.cfg (the same file the dev harness and the
# Kubernetes init step use), write the dispatcher list of the compose B2BUA
# workers, then run Kamailio in the foreground. POSIX sh: runs in the
# kamailio/kamailio Debian image. Inputs (environment):
#   SRC_DIR        where kamailio.cfg and the files it includes are (the read-only bind mount)
#   OUT_DIR        where to write the filled-in *.cfg and dispatcher.list
#   LISTEN_IP      the address to listen on, udp port 5060 (default: the
#                  container's address, so Record-Route carries a reachable one)
#   B2BUA_TARGETS  space-separated host:port of the B2BUA workers: each the
#                  first port of a pool (`dialtone b2bua --workers N`)
#   B2BUA_WORKERS  workers of each target's pool, on port, port + 1, ...
#                  (default 1: a single worker)
#   SUBSCRIBER_DB_URL, REGISTRATION_REDIS_URL  both set: the registrar is on
#                  (registrar.cfg, docs/edge.md): postgres://user:pw@host:port/db
#                  of the project database, and redis://host:port/db
#   TLS_CERTIFICATE, TLS_PRIVATE_KEY  paths of a PEM certificate chain and its
#                  key: both files there, SIP over TLS is on (tls.cfg, port 5061)
#   SIP_DOMAINS    comma-separated SIP domains a new INVITE may name (edge.cfg;
#                  default none: only this proxy's address)
#   EDGE_ALIASES   comma-separated host names that are this proxy's own (Kamailio's
#                  alias): the one the B2BUA workers name in the Route of their
#                  offers to registered devices (DIALTONE_SIP_EDGE); without it,
#                  loose_route() would send such an offer on to that name again
#   CHECK_ONLY     if set, stop after writing (tests run `kamailio -c` on the result)
set -eu
: "${SRC_DIR:?}" "${OUT_DIR:?}" "${B2BUA_TARGETS:?}"
LISTEN_IP=${LISTEN_IP:-$(hostname -i | cut -d' ' -f1)}
per_target=${B2BUA_WORKERS:-1}
list="$OUT_DIR/dispatcher.list"
: > "$list"
for target in $B2BUA_TARGETS; do
    host=${target%%:*}
    first=${target##*:}
    j=0
    while [ "$j" -lt "$per_target" ]; do
        # Worker j of the pool on port first + j. Two bridged calls per worker
        # (maxload=2: its four pjsua2 legs), as in the dev harness; the workers
        # run with --max-calls 2. duid: the host (one worker) or host:port, as
        # the pool's own list (dialtone/commands/b2bua_pool.py) names them.
        port=$((first + j))
        duid=$host
        [ "$per_target" -eq 1 ] || duid="$host:$port"
        echo "1 sip:$host:$port 0 0 duid=$duid;maxload=2" >> "$list"
        j=$((j + 1))
    done
done
# A restarted worker container gets a new address: re-resolve the names every
# 10 s (dispatcher's DS_DNS_MODE_TIMER = 4) instead of once at start.
# Every file of the configuration (kamailio.cfg and the files it includes).
for src in "$SRC_DIR"/*.cfg; do
    sed -e "s|LISTEN_ADDR|$LISTEN_IP:5060|" \
        -e "s|DISPATCHER_LIST|$list|" \
        -e "s|EDGE_SIP_DOMAINS|${SIP_DOMAINS:-}|" \
        -e "s|EDGE_CTL_SOCKET|$OUT_DIR/kamailio_ctl|" \
        -e '/modparam("dispatcher", "list_file"/a modparam("dispatcher", "ds_dns_mode", 4)\nmodparam("dispatcher", "ds_dns_interval", 10)' \
        "$src" > "$OUT_DIR/$(basename "$src")"
done
# Each alias after auto_aliases=no (any port): a Route naming one is this proxy's.
for alias in $(printf '%s' "${EDGE_ALIASES:-}" | tr ',' ' '); do
    sed -i "/^auto_aliases=no/a alias=\"$alias\"" "$OUT_DIR/kamailio.cfg"
done
# The registrar (registrar.cfg) when both its servers are given: its
# placeholders filled (sed's special characters in the URLs escaped) and
# WITH_REGISTRAR defined at the top of kamailio.cfg.
if [ -n "${SUBSCRIBER_DB_URL:-}" ] && [ -n "${REGISTRATION_REDIS_URL:-}" ]; then
    esc() { printf '%s' "$1" | sed -e 's/[|&\\]/\\&/g'; }
    db_url=$(esc "$SUBSCRIBER_DB_URL")
    redis_url=$(esc "$REGISTRATION_REDIS_URL")
    for out in "$OUT_DIR"/*.cfg; do
        sed -i -e "s|SUBSCRIBER_DB_URL|$db_url|" -e "s|REGISTRATION_REDIS_URL|$redis_url|" "$out"
    done
    sed -i '1a #!define WITH_REGISTRAR' "$OUT_DIR/kamailio.cfg"
fi
# TLS (tls.cfg) when the certificate and key named by TLS_CERTIFICATE and
# TLS_PRIVATE_KEY are there (compose: the mounted certificate directory;
# Kubernetes: the optional kamailio-tls Secret): its placeholders filled (the
# TLS listener on port 5061 of the SIP address) and WITH_TLS defined at the top
# of kamailio.cfg. Named but absent: TLS stays off, said on stderr.
if [ -n "${TLS_CERTIFICATE:-}" ] && [ -n "${TLS_PRIVATE_KEY:-}" ]; then
    if [ -r "$TLS_CERTIFICATE" ] && [ -r "$TLS_PRIVATE_KEY" ]; then
        tls_esc() { printf '%s' "$1" | sed -e 's/[|&\\]/\\&/g'; }
        certificate=$(tls_esc "$TLS_CERTIFICATE")
        private_key=$(tls_esc "$TLS_PRIVATE_KEY")
        for out in "$OUT_DIR"/*.cfg; do
            sed -i -e "s|TLS_ADDRESS|$LISTEN_IP:5061|" -e "s|TLS_CERTIFICATE|$certificate|" \
                -e "s|TLS_PRIVATE_KEY|$private_key|" "$out"
        done
        sed -i '1a #!define WITH_TLS' "$OUT_DIR/kamailio.cfg"
    else
        echo "no readable $TLS_CERTIFICATE and $TLS_PRIVATE_KEY: SIP over TLS (5061) is off" >&2
    fi
fi
if [ -n "${CHECK_ONLY:-}" ]; then exit 0; fi
# -DD: foreground with children; -E: log to stderr; -m/-M: shared and private
# memory in MiB (infra/budgets.toml).
exec kamailio -DD -E -f "$OUT_DIR/kamailio.cfg" -m 64 -M 8
