# Sourced by both of Kamailio's render steps (POSIX sh): infra/kamailio/
# compose-entrypoint.sh and the Kubernetes init step (deploy/k8s/base/kamailio/
# render-kamailio.sh), which differ only in where the workers are and which address
# to listen on. `render_config SIP_IP LIST` writes every file of the configuration
# from SRC_DIR into OUT_DIR with its placeholders filled (LIST: the dispatcher
# list's path), and switches the registrar and TLS on when their settings are
# there. Reads SRC_DIR, OUT_DIR and the optional SIP_DOMAINS, EDGE_ALIASES,
# SUBSCRIBER_DB_URL, REGISTRATION_REDIS_URL, TLS_CERTIFICATE, TLS_PRIVATE_KEY
# (documented in each caller).

render_config() {
    sip_ip=$1
    list=$2
    # Every file of the configuration (kamailio.cfg and the files it includes).
    for src in "$SRC_DIR"/*.cfg; do
        sed -e "s|LISTEN_ADDR|$sip_ip:5060|" \
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
                sed -i -e "s|TLS_ADDRESS|$sip_ip:5061|" -e "s|TLS_CERTIFICATE|$certificate|" \
                    -e "s|TLS_PRIVATE_KEY|$private_key|" "$out"
            done
            sed -i '1a #!define WITH_TLS' "$OUT_DIR/kamailio.cfg"
        else
            echo "no readable $TLS_CERTIFICATE and $TLS_PRIVATE_KEY: SIP over TLS (5061) is off" >&2
        fi
    fi
}
