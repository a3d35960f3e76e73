"""Grafana dashboards as code (issue 10 section 4, issue 15 section 4).

``dashboards`` builds the Operations (Prometheus) and Supervisor (PostgreSQL, on
the projection tables) dashboards with grafana-foundation-sdk's typed builders;
``sql`` adds the PostgreSQL query type the SDK does not ship; ``files`` writes
them into infra/grafana/dashboards (provisioned by docker-compose.yml's Grafana)
and ``dialtone grafana push`` (dialtone/commands/grafana.py) sends them to an
existing Grafana with grafana-client.
"""
