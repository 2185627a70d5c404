"""The destination guard: ranges, policies, and connect-time checks against a real local server."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence

import httpx
import pytest

from mock_server.netguard import (
    DestinationPolicy,
    DestinationRefused,
    Resolver,
    check_address,
    check_url,
    guarded_async_client,
    guarded_client,
    refusal_reason,
)
from tests.local_http import LoopbackServer

LOOPBACK = DestinationPolicy(allow_loopback=True)
PRIVATE = DestinationPolicy(allow_private=True)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "metadata"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "metadata"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("255.255.255.255", "reserved"),
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "embeds the IPv4 address 127.0.0.1: a loopback"),
        ("::ffff:10.1.2.3", "embeds the IPv4 address 10.1.2.3: a private"),
        ("::ffff:169.254.169.254", "metadata"),
        ("64:ff9b::a9fe:a9fe", "embeds the IPv4 address 169.254.169.254"),  # NAT64
        ("2002:7f00:1::", "embeds the IPv4 address 127.0.0.1"),  # 6to4
    ],
)
def test_default_policy_refuses_non_public_ranges(address: str, reason: str) -> None:
    found = refusal_reason(ipaddress.ip_address(address))
    assert found is not None and reason in found


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111"])
def test_default_policy_allows_public_addresses(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_allow_loopback_opens_loopback_only() -> None:
    assert refusal_reason(ipaddress.ip_address("127.0.0.1"), LOOPBACK) is None
    assert refusal_reason(ipaddress.ip_address("::1"), LOOPBACK) is None
    assert refusal_reason(ipaddress.ip_address("::ffff:127.0.0.1"), LOOPBACK) is None
    for other in ("10.0.0.1", "169.254.169.254", "0.0.0.0"):
        assert refusal_reason(ipaddress.ip_address(other), LOOPBACK) is not None


def test_allow_private_never_opens_link_local_or_metadata() -> None:
    assert refusal_reason(ipaddress.ip_address("10.0.0.1"), PRIVATE) is None
    assert refusal_reason(ipaddress.ip_address("fd12::1"), PRIVATE) is None
    for other in ("169.254.169.254", "fe80::1", "fd00:ec2::254", "127.0.0.1", "224.0.0.1"):
        assert refusal_reason(ipaddress.ip_address(other), PRIVATE) is not None


def test_allowed_hosts_exempt_names_addresses_and_networks() -> None:
    policy = DestinationPolicy(
        allowed_hosts=frozenset({"Inbox.Internal.", "169.254.169.254", "10.1.0.0/16"})
    )
    assert check_address("inbox.internal", "10.9.9.9", policy)  # by name, any address
    assert check_address("metadata", "169.254.169.254", policy)  # by address
    assert check_address("svc", "10.1.200.3", policy)  # by network
    with pytest.raises(DestinationRefused, match="private"):
        check_address("svc", "10.2.0.1", policy)
    with pytest.raises(ValueError, match="empty entry"):
        DestinationPolicy(allowed_hosts=frozenset({" "}))


def test_refusal_is_a_value_error_naming_host_address_and_reason() -> None:
    with pytest.raises(ValueError, match="internal") as caught:
        check_url("http://internal.example/x", resolve=lambda host, port: ["10.0.0.7"])
    error = caught.value
    assert isinstance(error, DestinationRefused)
    assert (error.host, error.address) == ("internal.example", "10.0.0.7")
    assert str(error) == (
        "destination 'internal.example' (10.0.0.7) refused: "
        "a private or non-global address (allow_private is off)"
    )


def test_every_resolved_address_is_checked() -> None:
    answers = ["93.184.216.34", "127.0.0.1"]
    with pytest.raises(DestinationRefused, match=r"127\.0\.0\.1"):
        check_url("https://mixed.example/", resolve=lambda host, port: answers)
    checked = check_url("https://mixed.example:8443/", LOOPBACK, resolve=lambda h, p: answers)
    assert (checked.host, checked.port, [str(a) for a in checked.addresses]) == (
        "mixed.example",
        8443,
        answers,
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.1/", "loopback"),  # shorthand the system resolver expands
        ("http://2130706433/", "loopback"),  # 127.0.0.1 as one number
        ("http://0x7f.0.0.1/", "loopback"),
        ("http://[::1]:8080/", "loopback"),
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("ftp://example.com/", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("http:///nohost", "no host"),
        ("http://example.com:99999/", "not a valid URL"),
    ],
)
def test_check_url_refuses_disguised_and_malformed_urls(url: str, problem: str) -> None:
    with pytest.raises(DestinationRefused, match=problem):
        check_url(url)


def test_unresolvable_host_is_a_network_error_not_a_refusal() -> None:
    with pytest.raises(OSError) as caught:
        check_url("http://no-such-host.invalid/")
    assert not isinstance(caught.value, DestinationRefused)


# -- connect-time checks against a real server ---------------------------------------------


_Server = LoopbackServer


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as made:
        yield made


def _fake_dns(table: dict[str, Sequence[str]]) -> Resolver:
    def resolve(host: str, port: int) -> Sequence[str]:
        return table[host]

    return resolve


def test_guarded_client_refuses_before_connecting(server: _Server) -> None:
    with guarded_client() as client, pytest.raises(DestinationRefused, match="loopback"):
        client.get(f"http://127.0.0.1:{server.port}/")
    assert server.hits == []
    with guarded_client(LOOPBACK) as client:
        assert client.get(f"http://127.0.0.1:{server.port}/").text == "ok"
    assert server.hits == [("/", f"127.0.0.1:{server.port}")]


def test_guarded_client_connects_to_the_checked_address_under_the_original_name(
    server: _Server,
) -> None:
    # "pinned.test" exists only in the fake DNS: reaching the server proves the socket went to
    # the address the guard checked, and the Host header keeps the name.
    resolve = _fake_dns({"pinned.test": ["127.0.0.1"]})
    with guarded_client(LOOPBACK, resolve=resolve) as client:
        assert client.get(f"http://pinned.test:{server.port}/a").status_code == 200
    assert server.hits == [("/a", f"pinned.test:{server.port}")]


def test_dns_rebinding_between_check_and_connect_is_refused(server: _Server) -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    def rebinding(host: str, port: int) -> Sequence[str]:
        return next(answers)

    url = f"http://rebind.test:{server.port}/"
    assert check_url(url, resolve=rebinding).addresses  # the early check sees a public address
    with guarded_client(resolve=rebinding) as client, pytest.raises(DestinationRefused):
        client.get(url)
    assert server.hits == []


def test_every_redirect_hop_is_checked(server: _Server) -> None:
    resolve = _fake_dns({"public.test": ["127.0.0.1"], "internal.test": ["127.0.0.1"]})
    policy = DestinationPolicy(allowed_hosts=frozenset({"public.test"}))
    hop = f"http://internal.test:{server.port}/secret"
    with guarded_client(policy, resolve=resolve, follow_redirects=True) as client:
        with pytest.raises(DestinationRefused, match=r"internal\.test"):
            client.get(f"http://public.test:{server.port}/redirect?to={hop}")
        same = f"http://public.test:{server.port}/fine"
        assert client.get(f"http://public.test:{server.port}/redirect?to={same}").text == "ok"
    assert [path for path, _ in server.hits] == [
        f"/redirect?to={hop}",
        f"/redirect?to={same}",
        "/fine",
    ]


def test_next_checked_address_is_tried_when_one_fails(server: _Server) -> None:
    # 127.0.0.2 has nobody listening on the server's port: the connection falls through to the
    # next checked address, never to a fresh resolution.
    resolve = _fake_dns({"two.test": ["127.0.0.2", "127.0.0.1"]})
    with guarded_client(LOOPBACK, resolve=resolve) as client:
        assert client.get(f"http://two.test:{server.port}/").text == "ok"


def test_unresolvable_host_in_a_client_is_a_connect_error() -> None:
    with guarded_client() as client, pytest.raises(httpx.ConnectError, match="cannot resolve"):
        client.get("http://no-such-host.invalid/")


async def test_async_client_applies_the_same_checks(server: _Server) -> None:
    async with guarded_async_client() as client:
        with pytest.raises(DestinationRefused, match="loopback"):
            await client.get(f"http://localhost:{server.port}/")
    resolve = _fake_dns({"pinned.test": ["127.0.0.1"]})
    async with guarded_async_client(LOOPBACK, resolve=resolve) as client:
        assert (await client.get(f"http://pinned.test:{server.port}/x")).text == "ok"
    assert server.hits == [("/x", f"pinned.test:{server.port}")]
