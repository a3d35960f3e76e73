"""`dialtone restore` loads a backup's rows parent tables first: pg_dump lists a
whole-schema archive's table data by name, and a referencing table's rows before
the rows they reference break its foreign key."""

from __future__ import annotations

from dialtone.services.pg_tools import parents_first

LISTING = """;
; Archive created at 2026-12-06 06:42:12 UTC
;
3401; 0 16500 TABLE DATA public api_keys dialtone
3402; 0 16510 TABLE DATA public callservice_events dialtone
3403; 0 16520 TABLE DATA public refresh_tokens dialtone
3404; 0 16530 TABLE DATA public service_accounts dialtone
3410; 0 0 SEQUENCE SET public audit_log_id_seq dialtone
3405; 0 16540 TABLE DATA public tenants dialtone
3406; 0 16550 TABLE DATA public users dialtone
"""
REFERENCES = {"api_keys": {"service_accounts"}, "service_accounts": {"tenants"},
              "users": {"tenants"}, "refresh_tokens": {"users"}}


def _tables(listing: str) -> list[str]:
    return [line.split()[6] for line in listing.splitlines() if " TABLE DATA " in line]


def test_rows_of_a_table_come_after_those_of_every_table_it_references() -> None:
    order = _tables(parents_first(LISTING, REFERENCES))

    for child, parents in REFERENCES.items():
        for parent in parents:
            assert order.index(parent) < order.index(child), order
    assert sorted(order) == sorted(_tables(LISTING))


def test_entries_other_than_table_data_keep_their_places() -> None:
    before, after = LISTING.splitlines(), parents_first(LISTING, REFERENCES).splitlines()

    assert len(after) == len(before)
    for i, line in enumerate(before):
        if " TABLE DATA " not in line:
            assert after[i] == line


def test_a_self_reference_or_a_cycle_does_not_loop() -> None:
    cyclic = {"tenants": {"tenants", "users"}, "users": {"tenants"}}

    assert sorted(_tables(parents_first(LISTING, cyclic))) == sorted(_tables(LISTING))
