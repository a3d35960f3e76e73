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
# The configuration, as the other render step writes it (render-config.sh). A
# restarted worker gets a new address: the dispatcher re-resolves the names every
# 10 s (DS_DNS_MODE_TIMER = 4) instead of once at start.
. "$SRC_DIR/render-config.sh"
render_config "$LISTEN_IP" "$list"
if [ -n "${CHECK_ONLY:-}" ]; then exit 0; fi
# -DD: foreground with children; -E: log to stderr; -m/-M: shared and private
# memory in MiB (infra/budgets.toml).
exec kamailio -DD -E -f "$OUT_DIR/kamailio.cfg" -m 64 -M 8
