"""The whole topology at once: export it, or make it match a file (planned, then applied in one
transaction)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from cloudgw.api import schemas
from cloudgw.controller import auth
from cloudgw.controller.config_writes import apply_topology
from cloudgw.controller.state import State
from cloudgw.model.topologyfile import TopologyFile, dump_file, from_topology

router = APIRouter(prefix="/api/v1", tags=["topology"])


@router.get("/topology", summary="The live topology in the declarative file's format")
def export(state: State = Depends(auth.get_state), _who: auth.Principal = Depends(auth.reader)) -> Any:
    snapshot = state.snapshot()
    return {**dump_file(from_topology(snapshot.topo)), "revision": snapshot.revision}


@router.put(
    "/topology",
    response_model=schemas.ApplyResult,
    summary="Make the topology match this one: creates, updates and deletes, in one transaction",
)
def apply(
    body: TopologyFile,
    dry_run: bool = Query(False, description="only compute the plan"),
    expect_revision: int | None = Query(
        None, description="refuse if the topology changed since this revision (the one a dry run returned)"
    ),
    prune: bool = Query(False, description="allow deleting what the body does not name (needs expect_revision too)"),
    state: State = Depends(auth.get_state),
    who: auth.Principal = Depends(auth.admin),
) -> Any:
    steps, revision = apply_topology(
        state, who.name, body, dry_run=dry_run, expect_revision=expect_revision, prune=prune
    )
    return schemas.ApplyResult(
        dry_run=dry_run,
        revision=revision,
        steps=[
            schemas.PlanStep(op=s.op, kind=s.kind, name=s.name, body=s.body, before=s.before, text=s.describe())
            for s in steps
        ],
    )
