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
# The configuration, as the other render step writes it (render-config.sh). A
# restarted worker gets a new address: the dispatcher re-resolves the names every
# 10 s (DS_DNS_MODE_TIMER = 4) instead of once at start.
. "$SRC_DIR/render-config.sh"
render_config "$POD_IP" "$list"
