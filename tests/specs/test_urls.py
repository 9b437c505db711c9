"""The URL check refuses every non-public destination (tests/fixtures/hostile/destinations/) but not public ones."""

from __future__ import annotations

import pytest

from infra import urls


@pytest.mark.parametrize("url", [
    "https://huggingface.co/datasets/philschmid/dolly-15k-oai-style/resolve/main/data/train.parquet",
    "https://bücher.example.de/data.jsonl",  # Unicode that IDNA encodes to a public xn-- name
    "https://8.8.8.8/data.jsonl",
    "https://[2001:4860:4860::8888]/data.jsonl",  # a global IPv6 address
    "https://[2002:808:808::1]/data.jsonl",  # 6to4 carrying the public 8.8.8.8
    "https://[::ffff:8.8.8.8]/data.jsonl",  # IPv4-mapped public address
    "https://example.com:8443/a%20b.parquet?download=1",  # percent-encoding in the path is fine
])
def test_public_destinations_pass(url):
    assert urls.problems(url) == []


def test_ipv6_forms_are_judged_by_the_address_they_carry():
    carried = {"::ffff:a9fe:a9fe": "169.254.169.254", "2002:a00:1::": "10.0.0.1",
               "64:ff9b::7f00:1": "127.0.0.1", "2001:4860::5efe:a00:1": "10.0.0.1", "::a00:1": "10.0.0.1"}
    for host, ipv4 in carried.items():
        shown, reason = urls.unsafe_host(host)
        assert f"carrying {ipv4}" in reason, (host, reason)
