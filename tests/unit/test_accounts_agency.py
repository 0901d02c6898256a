"""The agency role: an agency account belongs to exactly one agency, no other role has one."""

from __future__ import annotations

import pytest

from accounts.model import Perm, Role
from accounts.store import AuthStore
from bench.web_rig import FAST_HASHER
from tongdai.db import make_engine, upgrade_engine


async def test_given_the_agency_role_then_it_needs_its_agency_and_keeps_to_its_desk(
    db_url: str,
) -> None:
    engine = make_engine(db_url)
    await upgrade_engine(engine)
    try:
        auth = AuthStore(engine, hasher=FAST_HASHER)
        with pytest.raises(ValueError, match="needs its agency"):
            await auth.add_user("cq1", "agency", None)
        with pytest.raises(ValueError, match="only an agency account"):
            await auth.add_user("tdv9", "agent", None, agency_id="so_gtvt")
        u = await auth.add_user("cq1", "agency", None, agency_id="so_gtvt")
        assert (u.role, u.agency_id) == (Role.AGENCY, "so_gtvt")
        assert u.can(Perm.AGENCY_DESK) and not u.can(Perm.TICKETS_READ)
        assert not u.can(Perm.FORWARD) and not u.can(Perm.CONSOLE)
        moved = await auth.update_user("cq1", agency_id="so_tu_phap")
        assert moved.user.agency_id == "so_tu_phap"
        with pytest.raises(ValueError, match="needs its agency"):
            await auth.update_user("cq1", agency_id=None)
        left = await auth.update_user("cq1", role="manager")  # leaving the role drops the agency
        assert (left.user.role, left.user.agency_id) == (Role.MANAGER, None)
        with pytest.raises(ValueError, match="needs its agency"):
            await auth.update_user("cq1", role="agency")
    finally:
        await engine.dispose()
