"""The worker's rule for where INVITEs may come from (adapters/sip/pjsua/admission.py)."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest
from click.testing import CliRunner

from adapters.sip.pjsua.admission import LOOPBACK, is_trusted, parse_networks, source_host
from dialtone.commands.b2bua import command
from dialtone.settings import Settings


@pytest.mark.parametrize(("source", "expected"), [
    ("127.0.0.1:5060", "127.0.0.1"),
    ("10.1.2.3:40000", "10.1.2.3"),
    ("[::1]:5060", "::1"),
    ("[2001:db8::7]:5070", "2001:db8::7"),
    ("10.1.2.3", "10.1.2.3"),
    ("2001:db8::7", "2001:db8::7"),
    ("[::ffff:10.0.0.5]:5060", "10.0.0.5"),  # dual-stack socket, IPv4 sender
])
def test_source_host_reads_pjsips_source_address(source: str, expected: str) -> None:
    assert source_host(source) == ip_address(expected)


@pytest.mark.parametrize("source", ["", "edge.example:5060", "[::1", "1.2.3:5060", "::1]:5"])
def test_an_unreadable_source_has_no_host(source: str) -> None:
    assert source_host(source) is None


def test_only_sources_inside_the_trusted_networks_are_trusted() -> None:
    trusted = parse_networks(["10.0.0.5", "10.1.0.0/16,2001:db8::/64"])

    assert is_trusted("10.0.0.5:5060", trusted)
    assert is_trusted("10.1.200.3:5060", trusted)
    assert is_trusted("[2001:db8::42]:5060", trusted)
    assert not is_trusted("10.0.0.6:5060", trusted)
    assert not is_trusted("10.2.0.1:5060", trusted)
    assert not is_trusted("[2001:db8:1::42]:5060", trusted)
    assert not is_trusted("garbage", trusted)


def test_the_default_trusts_loopback_only() -> None:
    assert is_trusted("127.0.0.1:5060", LOOPBACK)
    assert is_trusted("127.0.0.2:5060", LOOPBACK)
    assert is_trusted("[::1]:5060", LOOPBACK)
    assert not is_trusted("192.168.1.10:5060", LOOPBACK)


def test_parse_networks_reads_addresses_and_networks() -> None:
    assert parse_networks([" 127.0.0.1 , ::1", "10.0.0.0/8"]) == (
        ip_network("127.0.0.1/32"), ip_network("::1/128"), ip_network("10.0.0.0/8"))


@pytest.mark.parametrize("spec", ["kamailio.example", "10.1.2.3/16", "10.0.0.0/33"])
def test_parse_networks_refuses_names_and_typos(spec: str) -> None:
    with pytest.raises(ValueError, match="not an address or network"):
        parse_networks([spec])


def test_parse_networks_refuses_an_empty_list() -> None:
    with pytest.raises(ValueError, match="no trusted address"):
        parse_networks([" , "])


def test_dialtone_b2bua_refuses_a_bad_trusted_source_before_touching_anything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An address nothing listens on: reaching for the store would log its failure.
    settings = Settings(database_url="postgresql://dialtone@127.0.0.1:1/dialtone")

    result = CliRunner().invoke(command, ["--trusted-source", "kamailio.example"],
                                obj=settings)

    assert result.exit_code == 2, result.output
    assert "not an address or network: 'kamailio.example'" in result.output
    assert "--trusted-source" in result.output
    assert "cannot end the calls" not in caplog.text  # the store was never reached


def test_dialtone_b2bua_refuses_a_bad_edge_before_touching_anything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(database_url="postgresql://dialtone@127.0.0.1:1/dialtone")

    result = CliRunner().invoke(command, ["--edge", "sip:kamailio;lr"], obj=settings)

    assert result.exit_code == 2, result.output
    assert "host[:port]" in result.output
    assert "--edge" in result.output
    assert "cannot end the calls" not in caplog.text  # the store was never reached
