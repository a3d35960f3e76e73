#!/bin/sh
# Init step of the Kamailio pod: fill the placeholders of kamailio.cfg
# (infra/kamailio/kamailio.cfg, copied into the ConfigMap) and write the
# dispatcher list of the B2BUA StatefulSet's pods. POSIX sh: runs in the
# Kamailio image. Inputs (environment):
#   SRC_DIR          where kamailio.cfg and the files it includes are (the ConfigMap)
#   OUT_DIR          where to write the filled-in *.cfg and dispatcher.list
#   POD_IP           the address to listen on (udp, port 5060)
#   NAMESPACE        the namespace of the b2bua Service
#   B2BUA_REPLICAS   how many b2bua pods (= the StatefulSet's replicas)
#   B2BUA_WORKERS_PER_POD  workers of each pod's pool (`dialtone b2bua --workers`,
#                    on ports 5070, 5071, ...; default 1); equal to b2bua's own
#                    (b2bua.yaml), whose ports and NetworkPolicy follow it
#   SUBSCRIBER_DB_URL, REGISTRATION_REDIS_URL  both set: the registrar is on
#                  (registrar.cfg, docs/edge.md): postgres://user:pw@host:port/db
#                  of the project database, and redis://host:port/db
#   TLS_CERTIFICATE, TLS_PRIVATE_KEY  paths of a PEM certificate chain and its
#                  key: both files there, SIP over TLS is on (tls.cfg, port 5061)
#   SIP_DOMAINS      comma-separated SIP domains a new INVITE may name (edge.cfg;
#                    default none: only this proxy's address)
#   EDGE_ALIASES     comma-separated host names that are this proxy's own (Kamailio's
#                    alias): the kamailio Service's, which the B2BUA workers name in
#                    the Route of their offers to registered devices (DIALTONE_SIP_EDGE)
set -eu
: "${SRC_DIR:?}" "${OUT_DIR:?}" "${POD_IP:?}" "${NAMESPACE:?}" "${B2BUA_REPLICAS:?}"
per_pod=${B2BUA_WORKERS_PER_POD:-1}
if [ "$per_pod" -lt 1 ]; then
    echo "B2BUA_WORKERS_PER_POD=$per_pod: at least 1" >&2
    exit 1
fi
list="$OUT_DIR/dispatcher.list"
: > "$list"
i=0
while [ "$i" -lt "$B2BUA_REPLICAS" ]; do
    # Each pod's pool: worker j on port 5070 + j. Two bridged calls per worker
    # (maxload=2: its four pjsua2 legs), as in the dev harness; the workers run
    # with --max-calls 2. duid: the pod (one worker) or the pod and port, as
    # the pool's own list (dialtone/commands/b2bua_pool.py) names them.
    j=0
    while [ "$j" -lt "$per_pod" ]; do
        port=$((5070 + j))
        duid="b2bua-$i"
        [ "$per_pod" -eq 1 ] || duid="b2bua-$i:$port"
        echo "1 sip:b2bua-$i.b2bua.$NAMESPACE.svc.cluster.local:$port 0 0 duid=$duid;maxload=2" >> "$list"
        j=$((j + 1))
    done
    i=$((i + 1))
done
# Pod IPs change when a worker restarts: re-resolve the names on a timer
# (dispatcher's DS_DNS_MODE_TIMER = 4, every 10 s) instead of once at start.
# Every file of the configuration (kamailio.cfg and the files it includes).
for src in "$SRC_DIR"/*.cfg; do
    sed -e "s|LISTEN_ADDR|$POD_IP:5060|" \
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
            sed -i -e "s|TLS_ADDRESS|$POD_IP:5061|" -e "s|TLS_CERTIFICATE|$certificate|" \
                -e "s|TLS_PRIVATE_KEY|$private_key|" "$out"
        done
        sed -i '1a #!define WITH_TLS' "$OUT_DIR/kamailio.cfg"
    else
        echo "no readable $TLS_CERTIFICATE and $TLS_PRIVATE_KEY: SIP over TLS (5061) is off" >&2
    fi
fi
