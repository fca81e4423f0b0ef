"""A burst policy's live state and its decisions (the loop: controller/burstloop.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import func, select

from cloudgw.controller import auth
from cloudgw.controller.db.models import BurstDecisionRow, BurstStateRow, BurstVmRow
from cloudgw.controller.pages import PageParams, next_cursor
from cloudgw.controller.state import State
from cloudgw.errors import NotFound
from cloudgw.model.paging import MAX_CURSOR, MAX_LIMIT

router = APIRouter(prefix="/api/v1/bursts", tags=["bursts"])


def _policy(state: State, name: str) -> None:
    if name not in state.snapshot().topo.bursts:
        raise NotFound("burst policy", name)


@router.get("/{name}/status", summary="Demand, the last decision's reason, the policy's VMs, the last hour")
def status(
    name: str,
    request: Request,
    state: State = Depends(auth.get_state),
    _who: auth.Principal = Depends(auth.reader),
) -> Any:
    _policy(state, name)
    series = list(request.app.state.bursts.series.get(name, ()))
    with state.session() as session:
        row = session.get(BurstStateRow, name)
        vms = list(
            session.scalars(select(BurstVmRow).where(BurstVmRow.policy == name).order_by(BurstVmRow.launched_at))
        )
        return {
            "policy": name,
            "enabled": state.snapshot().topo.bursts[name].enabled,
            "demand": row.demand if row else None,
            "error": row.error if row else None,
            "reason": row.reason if row else "not evaluated yet",
            "checked_at": row.checked_at if row else None,
            "vms": [
                {
                    "ip": v.ip,
                    "instance": v.instance,
                    "state": v.state,
                    "launched_at": v.launched_at,
                    "drain_until": v.drain_until,
                }
                for v in vms
            ],
            # demand and VM count at each pass of this controller's loop over the last hour
            "series": [{"t": t, "demand": d, "vms": n} for t, d, n in series],
        }


@router.get("/{name}/history", summary="The policy's decisions with their reasons, newest first, a page at a time")
def history(
    name: str,
    limit: int = Query(100, ge=1, le=MAX_LIMIT),
    cursor: str | None = Query(None, max_length=MAX_CURSOR),
    state: State = Depends(auth.get_state),
    _who: auth.Principal = Depends(auth.reader),
) -> Any:
    _policy(state, name)
    before = PageParams(limit, cursor).after("burst-history", (int,))
    query = select(BurstDecisionRow).where(BurstDecisionRow.policy == name).order_by(BurstDecisionRow.id.desc())
    with state.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        if before is not None:
            query = query.where(BurstDecisionRow.id < before[0])
        rows = list(session.scalars(query.limit(limit + 1)))
    items = [
        {
            "id": r.id,
            "at": r.at,
            "demand": r.demand,
            "vms": r.vms,
            "action": r.action,
            "change": r.change,
            "reason": r.reason,
        }
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return {
        "items": items,
        "total": total,
        "next_cursor": next_cursor("burst-history", (items[-1]["id"],) if more else None),
    }
