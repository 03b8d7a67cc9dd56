"""The access policy as a unit: who may use the socket, for any user running the tests."""

from __future__ import annotations

import os
from pathlib import Path

from atlasd.config import Config
from atlasd.daemon.access import AccessPolicy, PeerCred

STRANGER = 4_000_123
OTHER_GROUP = 4_000_456


def _config(**kw: object) -> Config:
    return Config(socket=Path("/unused.sock"), data_dir=Path("/unused"), **kw)  # type: ignore[arg-type]


def _proc(tmp_path: Path, pid: int, groups: str) -> str:
    """A process status file as the kernel writes it, with the given Groups line."""
    folder = tmp_path / str(pid)
    folder.mkdir()
    (folder / "status").write_text(f"Name:\tclient\nUid:\t{STRANGER}\nGroups:\t{groups}\n")
    return str(tmp_path)


def test_the_daemons_own_uid_and_root_are_always_allowed() -> None:
    """Its own user and root reach the daemon with nothing configured."""
    policy = AccessPolicy(_config())
    assert policy.allows(PeerCred(1, os.getuid(), STRANGER))
    assert policy.allows(PeerCred(1, 0, STRANGER))


def test_a_stranger_is_refused_and_a_listed_uid_allowed() -> None:
    """Another uid is refused unless allowed_uids names it."""
    assert not AccessPolicy(_config()).allows(PeerCred(1, STRANGER, STRANGER))
    assert AccessPolicy(_config(allowed_uids=(STRANGER,))).allows(PeerCred(1, STRANGER, STRANGER))


def test_a_primary_group_in_allowed_gids_is_allowed() -> None:
    """A peer whose primary gid is listed gets in; one with another gid does not."""
    policy = AccessPolicy(_config(allowed_gids=(OTHER_GROUP,)))
    assert policy.allows(PeerCred(1, STRANGER, OTHER_GROUP))
    assert not policy.allows(PeerCred(1, STRANGER, STRANGER))


def test_the_socket_group_by_number_admits_its_members() -> None:
    """socket_group counts as an allowed gid, given as a number or a numeric string."""
    for group in (OTHER_GROUP, str(OTHER_GROUP)):
        policy = AccessPolicy(_config(socket_group=group))
        assert policy.allows(PeerCred(1, STRANGER, OTHER_GROUP))


def test_a_supplementary_group_from_the_process_status_admits(tmp_path: Path) -> None:
    """A peer whose supplementary groups (the kernel's Groups: line) meet the allowed gids."""
    proc = _proc(tmp_path, 4242, f"100 {OTHER_GROUP} 200")
    policy = AccessPolicy(_config(allowed_gids=(OTHER_GROUP,)), proc=proc)
    assert policy.allows(PeerCred(4242, STRANGER, STRANGER))


def test_supplementary_groups_that_do_not_meet_the_allowed_gids_are_refused(
    tmp_path: Path,
) -> None:
    """Groups other than the allowed ones do not admit a stranger."""
    proc = _proc(tmp_path, 4243, "100 200")
    policy = AccessPolicy(_config(allowed_gids=(OTHER_GROUP,)), proc=proc)
    assert not policy.allows(PeerCred(4243, STRANGER, STRANGER))


def test_without_allowed_groups_supplementary_groups_are_not_consulted(tmp_path: Path) -> None:
    """With no gid configured, group membership admits nobody."""
    proc = _proc(tmp_path, 4244, f"{OTHER_GROUP}")
    assert not AccessPolicy(_config(), proc=proc).allows(PeerCred(4244, STRANGER, OTHER_GROUP))
