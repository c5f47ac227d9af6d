"""Outbound address policy: callers cannot make the platform call blocked networks."""

from __future__ import annotations

import pytest

from cityhub.kernel.outbound import DEFAULT_BLOCKED_NETWORKS, BlockedAddress, check_host


@pytest.mark.parametrize("host", ["169.254.169.254", "[fe80::1]", "0.0.0.0"])  # noqa: S104 - refused, not bound
def test_default_blocks_link_local_and_unspecified(host: str) -> None:
    with pytest.raises(BlockedAddress):
        check_host(host, 80, DEFAULT_BLOCKED_NETWORKS)


def test_names_are_resolved_and_private_ranges_can_be_added() -> None:
    check_host("localhost", 80, DEFAULT_BLOCKED_NETWORKS)  # allowed by default
    with pytest.raises(BlockedAddress):
        check_host("localhost", 80, [*DEFAULT_BLOCKED_NETWORKS, "127.0.0.0/8", "::1/128"])
    check_host("no-such-host.invalid", 80, ["0.0.0.0/0"])  # unresolvable: the connection fails by itself
