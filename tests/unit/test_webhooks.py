from __future__ import annotations

import pytest

from config.webhook_policy import WebhookPolicy, WebhookRefused

HINT = "the webhook policy refuses it (A2A_PUSH_ALLOWLIST admits addresses or hosts)"

REFUSED_ADDRESSES = [
    ("127.0.0.1", "loopback", "a loopback address"),
    ("127.255.0.9", "loopback", "a loopback address"),
    ("::1", "loopback", "a loopback address"),
    ("10.0.0.5", "private", "a private address"),
    ("172.16.3.4", "private", "a private address"),
    ("172.31.255.255", "private", "a private address"),
    ("192.168.1.1", "private", "a private address"),
    ("fc00::1", "private", "a private address"),
    ("fd12:3456::1", "private", "a private address"),
    ("169.254.10.20", "link-local", "a link-local address"),
    ("fe80::1", "link-local", "a link-local address"),
    ("100.64.0.1", "cgnat", "a carrier-grade NAT address"),
    ("100.127.255.254", "cgnat", "a carrier-grade NAT address"),
    ("224.0.0.251", "multicast", "a multicast address"),
    ("239.255.255.250", "multicast", "a multicast address"),
    ("ff02::1", "multicast", "a multicast address"),
    ("ff0e::fb", "multicast", "a multicast address"),
    ("169.254.169.254", "metadata", "a cloud metadata address"),
    ("fd00:ec2::254", "metadata", "a cloud metadata address"),
    ("100.100.100.200", "metadata", "a cloud metadata address"),
    ("168.63.129.16", "metadata", "a cloud metadata address"),
    ("0.0.0.0", "unspecified", "the unspecified address"),
    ("::", "unspecified", "the unspecified address"),
    ("255.255.255.255", "broadcast", "the broadcast address"),
    ("240.0.0.1", "reserved", "a reserved address"),
    ("0.1.2.3", "reserved", "a reserved address"),
    ("192.0.0.9", "reserved", "a reserved address"),
    ("198.18.0.1", "reserved", "a reserved address"),
    ("192.0.2.1", "reserved", "a reserved address"),
    ("198.51.100.7", "reserved", "a reserved address"),
    ("203.0.113.9", "reserved", "a reserved address"),
    ("2001:db8::1", "reserved", "a reserved address"),
    ("3fff::1", "reserved", "a reserved address"),
    ("100::1", "reserved", "a reserved address"),
    ("2001::1", "reserved", "a reserved address"),
    ("64:ff9b:1::a00:1", "reserved", "a reserved address"),
    ("fec0::1", "reserved", "a reserved address"),
    ("::7f00:1", "reserved", "a reserved address"),
]


@pytest.mark.parametrize(("address", "rule", "what"), REFUSED_ADDRESSES)
def test_check_address_non_public_refused(address: str, rule: str, what: str) -> None:
    with pytest.raises(WebhookRefused) as caught:
        WebhookPolicy().check_address(address, "hooks.example")
    assert caught.value.rule == rule
    assert str(caught.value) == (
        f"pushNotificationConfig.url: {address} (from 'hooks.example') is {what}; {HINT}"
    )


@pytest.mark.parametrize(
    ("address", "rule", "carried"),
    [
        ("::ffff:127.0.0.1", "loopback", "127.0.0.1"),
        ("::ffff:a00:5", "private", "10.0.0.5"),
        ("::ffff:169.254.169.254", "metadata", "169.254.169.254"),
        ("64:ff9b::7f00:1", "loopback", "127.0.0.1"),
        ("64:ff9b::a9fe:a9fe", "metadata", "169.254.169.254"),
        ("64:ff9b::6440:1", "cgnat", "100.64.0.1"),
        ("2002:a00:5::1", "private", "10.0.0.5"),
        ("2002:7f00:1::", "loopback", "127.0.0.1"),
        ("2002:c0a8:101::1", "private", "192.168.1.1"),
        ("::ffff:0.0.0.0", "unspecified", "0.0.0.0"),
    ],
)
def test_check_address_embedded_ipv4_judged_as_ipv4(address: str, rule: str, carried: str) -> None:
    with pytest.raises(WebhookRefused) as caught:
        WebhookPolicy().check_address(address, "hooks.example")
    assert caught.value.rule == rule
    what = {
        "loopback": "a loopback address",
        "private": "a private address",
        "metadata": "a cloud metadata address",
        "cgnat": "a carrier-grade NAT address",
        "unspecified": "the unspecified address",
    }[rule]
    assert str(caught.value) == (
        f"pushNotificationConfig.url: {address} (from 'hooks.example') is {what} "
        f"(IPv4 {carried} inside IPv6); {HINT}"
    )


def test_check_address_literal_host_message_names_address_once() -> None:
    with pytest.raises(WebhookRefused) as caught:
        WebhookPolicy().check_address("10.0.0.5", "10.0.0.5")
    assert str(caught.value) == f"pushNotificationConfig.url: 10.0.0.5 is a private address; {HINT}"


def test_check_address_not_an_address_refused() -> None:
    with pytest.raises(WebhookRefused) as caught:
        WebhookPolicy().check_address("not-an-ip", "hooks.example")
    assert caught.value.rule == "host"
    assert str(caught.value) == (
        "pushNotificationConfig.url: 'not-an-ip' (from 'hooks.example') is not an IP address"
    )


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "2606:2800:220:1:248:1893:25c8:1946",
        "2001:4860:4860::8888",
        "::ffff:93.184.216.34",
        "64:ff9b::5db8:d822",
        "2002:5db8:d822::1",
    ],
)
def test_check_address_public_accepted(address: str) -> None:
    WebhookPolicy().check_address(address, "hooks.example")


@pytest.mark.parametrize(
    ("entry", "address"),
    [
        ("127.0.0.0/8", "127.0.0.1"),
        ("127.0.0.0/8", "::ffff:127.0.0.1"),
        ("::1/128", "::1"),
        ("10.1.2.3", "10.1.2.3"),
        ("10.0.0.0/8", "10.200.0.1"),
        ("169.254.169.254/32", "169.254.169.254"),
        ("fd00::/8", "fd00:ec2::254"),
        ("192.0.2.0/24", "192.0.2.1"),
    ],
)
def test_check_address_allowlisted_network_admitted(entry: str, address: str) -> None:
    WebhookPolicy(allowlist=(entry,)).check_address(address, "hooks.example")


def test_check_address_outside_allowlisted_network_refused() -> None:
    policy = WebhookPolicy(allowlist=("10.1.2.3",))
    with pytest.raises(WebhookRefused) as caught:
        policy.check_address("10.1.2.4", "hooks.example")
    assert caught.value.rule == "private"


@pytest.mark.parametrize(
    ("entry", "host"),
    [
        ("hooks.internal", "hooks.internal"),
        ("hooks.internal", "HOOKS.Internal"),
        ("hooks.internal", "hooks.internal."),
        ("*.svc.cluster.local", "receiver.default.svc.cluster.local"),
        ("*.svc.cluster.local", "a.svc.cluster.local"),
        ("*.SVC.cluster.local.", "a.svc.cluster.local"),
    ],
)
def test_check_address_allowlisted_host_admitted(entry: str, host: str) -> None:
    policy = WebhookPolicy(allowlist=(entry,))
    assert policy.host_allowed(host) is True
    policy.check_address("10.0.0.5", host)


@pytest.mark.parametrize(
    ("entry", "host"),
    [
        ("hooks.internal", "other.internal"),
        ("hooks.internal", "a.hooks.internal"),
        ("*.svc.cluster.local", "svc.cluster.local"),
        ("*.svc.cluster.local", "evilsvc.cluster.local"),
        ("*.svc.cluster.local", "svc.cluster.local.evil.example"),
    ],
)
def test_check_address_host_not_allowlisted_refused(entry: str, host: str) -> None:
    policy = WebhookPolicy(allowlist=(entry,))
    assert policy.host_allowed(host) is False
    with pytest.raises(WebhookRefused) as caught:
        policy.check_address("10.0.0.5", host)
    assert str(caught.value) == (
        f"pushNotificationConfig.url: 10.0.0.5 (from '{host}') is a private address; {HINT}"
    )


@pytest.mark.parametrize(
    ("url", "allow_http", "expected"),
    [
        ("https://hooks.example/a2a?x=1", False, ("hooks.example", 443)),
        ("https://Hooks.Example:8443/", False, ("hooks.example", 8443)),
        ("https://hooks.example:/", False, ("hooks.example", 443)),
        ("http://hooks.example/", True, ("hooks.example", 80)),
        ("https://93.184.216.34/hook", False, ("93.184.216.34", 443)),
        (
            "https://[2606:2800:220:1:248:1893:25c8:1946]:9443/",
            False,
            ("2606:2800:220:1:248:1893:25c8:1946", 9443),
        ),
        ("https://[::FFFF:127.0.0.1]/", False, ("::ffff:127.0.0.1", 443)),
        ("http://127.0.0.1:8080/hook", True, ("127.0.0.1", 8080)),
        ("https://under_score.example/", False, ("under_score.example", 443)),
    ],
)
def test_check_url_valid_returns_host_and_port(
    url: str, allow_http: bool, expected: tuple[str, int]
) -> None:
    assert WebhookPolicy(allow_http=allow_http).check_url(url) == expected


@pytest.mark.parametrize(
    ("url", "allow_http", "rule", "message"),
    [
        (
            "http://hooks.example/",
            False,
            "scheme",
            "scheme 'http' is not allowed; the webhook policy requires https "
            "(A2A_PUSH_ALLOW_HTTP admits http)",
        ),
        (
            "ftp://hooks.example/",
            False,
            "scheme",
            "scheme 'ftp' is not allowed; the webhook policy requires https",
        ),
        (
            "ftp://hooks.example/",
            True,
            "scheme",
            "scheme 'ftp' is not allowed; the webhook policy requires https or http",
        ),
        (
            "hooks.example/a2a",
            False,
            "scheme",
            "scheme '' is not allowed; the webhook policy requires https",
        ),
        ("https:///a2a", False, "host", "the URL has no host"),
        ("https://:8443/a2a", False, "host", "the URL has no host"),
        (
            "https://user:secret@hooks.example/",
            False,
            "userinfo",
            "a user:password@ part is not allowed; "
            "credentials go in pushNotificationConfig.authentication",
        ),
        (
            "https://evil.example\\@hooks.example/",
            False,
            "userinfo",
            "a user:password@ part is not allowed; "
            "credentials go in pushNotificationConfig.authentication",
        ),
        (
            "https://hooks.example:99999/",
            False,
            "port",
            "port '99999' is not a valid port (1-65535)",
        ),
        ("https://hooks.example:0/", False, "port", "port '0' is not a valid port (1-65535)"),
        ("https://hooks.example:http/", False, "port", "port 'http' is not a valid port (1-65535)"),
        (
            "https://hooks.example:-1/",
            False,
            "port",
            "port '-1' is not a valid port (1-65535)",
        ),
        ("https://[::1/", False, "host", "not a valid URL (Invalid IPv6 URL)"),
        (
            "https://bücher.example/",
            False,
            "host",
            "host 'bücher.example' is not a valid host name or IP address",
        ),
        (
            "https://127.1/",
            False,
            "host",
            "host '127.1' is not a valid host name or IP address",
        ),
        (
            "https://0x7f.0.0.1/",
            False,
            "host",
            "host '0x7f.0.0.1' is not a valid host name or IP address",
        ),
        (
            "https://2130706433/",
            False,
            "host",
            "host '2130706433' is not a valid host name or IP address",
        ),
        (
            "https://evil.example%2f@x/",
            False,
            "userinfo",
            "a user:password@ part is not allowed; "
            "credentials go in pushNotificationConfig.authentication",
        ),
        (
            "https://hooks%2eexample/",
            False,
            "host",
            "host 'hooks%2eexample' is not a valid host name or IP address",
        ),
        (
            "https://[fe80::1%25eth0]/",
            False,
            "host",
            "host '[fe80::1%25eth0]' is not a valid host name or IP address",
        ),
    ],
)
def test_check_url_bad_form_refused(url: str, allow_http: bool, rule: str, message: str) -> None:
    with pytest.raises(WebhookRefused) as caught:
        WebhookPolicy(allow_http=allow_http).check_url(url)
    assert caught.value.rule == rule
    assert str(caught.value) == f"pushNotificationConfig.url: {message}"


def test_parse_strips_and_drops_empty_entries() -> None:
    policy = WebhookPolicy.parse(True, [" 127.0.0.0/8 ", "", "  ", "*.svc.cluster.local"])
    assert policy == WebhookPolicy(True, ("127.0.0.0/8", "*.svc.cluster.local"))
    assert policy.host_allowed("a.svc.cluster.local") is True
    policy.check_address("127.0.0.1", "localhost")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "10.0.0.0/33",
            "A2A_PUSH_ALLOWLIST entry '10.0.0.0/33' is not an address or CIDR network "
            "('10.0.0.0/33' does not appear to be an IPv4 or IPv6 network)",
        ),
        (
            "10.1.2.3/8",
            "A2A_PUSH_ALLOWLIST entry '10.1.2.3/8' is not an address or CIDR network "
            "(10.1.2.3/8 has host bits set)",
        ),
        (
            "300.1.2.3",
            "A2A_PUSH_ALLOWLIST entry '300.1.2.3' is not an address or CIDR network "
            "('300.1.2.3' does not appear to be an IPv4 or IPv6 network)",
        ),
        (
            "https://hooks.example",
            "A2A_PUSH_ALLOWLIST entry 'https://hooks.example' is not an address or CIDR network "
            "('https://hooks.example' does not appear to be an IPv4 or IPv6 network)",
        ),
        (
            "*",
            "A2A_PUSH_ALLOWLIST entry '*' is not an address, a CIDR network or a host name "
            "('hooks.internal', '*.svc.cluster.local')",
        ),
        (
            "hooks.*.example",
            "A2A_PUSH_ALLOWLIST entry 'hooks.*.example' is not an address, a CIDR network or a "
            "host name ('hooks.internal', '*.svc.cluster.local')",
        ),
        (
            "a..b",
            "A2A_PUSH_ALLOWLIST entry 'a..b' is not an address, a CIDR network or a host name "
            "('hooks.internal', '*.svc.cluster.local')",
        ),
    ],
)
def test_parse_bad_entry_raises_naming_it(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^A2A_PUSH_ALLOWLIST") as caught:
        WebhookPolicy.parse(False, ["127.0.0.1", entry])
    assert str(caught.value) == message
