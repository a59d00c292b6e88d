"""Admin endpoints for projections: status, and rebuilds run as background jobs.

    GET    /v1/admin/projections                  status of every projection
    POST   /v1/admin/projections/{name}/rebuild   202 + job (404 unknown, 409 already running)
    POST   /v1/admin/projections/rebuild          every projection, one after the other
    GET    /v1/admin/rebuilds[/{job_id}]          jobs and their progress / results
    DELETE /v1/admin/rebuilds/{job_id}            stop after the current batch (resumable)

The rebuild lock is taken before answering 202, so a second request for the same
projection -- from this process or another -- gets 409 at once. Admin role only.
"""

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from adapters.auth.policy import allow
from adapters.http.deps import ContainerDep, wait_seconds_query
from adapters.http.errors import ApiError
from adapters.projections.rebuild import (
    Progress,
    RebuildBusy,
    Rebuilder,
    RebuildError,
    RebuildResult,
    UnknownProjection,
)
from adapters.projections.status import projection_status

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[allow()])  # admin only


@dataclass
class Job:
    id: str
    names: list[str]
    mode: str
    status: str = "running"  # running | succeeded | failed | stopped
    progress: Progress | None = None
    results: list[RebuildResult] = field(default_factory=list)
    error: str | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def as_dict(self) -> dict[str, Any]:
        p = self.progress
        return {
            "id": self.id, "names": self.names, "mode": self.mode, "status": self.status,
            "progress": None if p is None else {
                "name": p.name, "phase": p.phase, "position": p.position, "target": p.target,
                "events": p.events, "events_per_second": round(p.rate, 1),
            },
            "results": [_result(r) for r in self.results],
            "error": self.error,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }  # fmt: skip


def _result(r: RebuildResult) -> dict[str, Any]:
    return {
        "name": r.name, "mode": r.mode, "position": r.position, "events": r.events,
        "seconds": round(r.seconds, 3), "resumed_from": r.resumed_from,
        "identical": r.identical if r.compared else None, "recount": r.recount,
        "switch_seconds": round(r.switch_seconds, 3), "summary": r.summary(),
        "tables": [
            {"table": t.table, "rows": t.rows, "checksum": t.checksum, "live_rows": t.live_rows,
             "live_checksum": t.live_checksum, "identical": t.identical}
            for t in r.tables
        ],
    }  # fmt: skip


def _jobs(request: Request) -> dict[str, Job]:
    state = request.app.state
    if not hasattr(state, "rebuild_jobs"):
        state.rebuild_jobs = {}
    return state.rebuild_jobs  # type: ignore[no-any-return]


@router.get("/projections")
def projections(
    c: ContainerDep,
    sample_seconds: Annotated[
        float, wait_seconds_query("Interval over which rates are measured")
    ] = 1.0,
) -> dict[str, Any]:
    """Every projection's position, lag behind the store head, rate and last error."""
    rows = projection_status(c.store, c.read_engine, sample_seconds=sample_seconds)
    return {"head": c.head_position, "projections": [r.as_dict() for r in rows]}


def _start(request: Request, c: Any, names: list[str], in_place: bool, restart: bool,
           require_identical: bool) -> JSONResponse:  # fmt: skip
    rebuilder = Rebuilder.for_container(c)
    holds = []
    try:
        for name in names:
            hold = rebuilder.hold(name)
            hold.__enter__()  # taken now, so that a concurrent request gets 409 at once
            holds.append(hold)
    except (UnknownProjection, RebuildBusy) as e:
        for hold in holds:
            hold.__exit__(None, None, None)
        status = 404 if isinstance(e, UnknownProjection) else 409
        code = "unknown_projection" if status == 404 else "rebuild_running"
        raise ApiError(status, code, str(e)) from None
    job = Job(uuid.uuid4().hex, names, "in-place" if in_place else "blue-green")
    _jobs(request)[job.id] = job

    def run() -> None:
        try:
            for name, hold in zip(names, holds, strict=True):
                try:
                    job.results.append(rebuilder.rebuild(
                        name, in_place=in_place, restart=restart, held=True, stop=job.stop,
                        require_identical=require_identical,
                        on_progress=lambda p: setattr(job, "progress", p),
                    ))  # fmt: skip
                finally:
                    hold.__exit__(None, None, None)
            job.status = "succeeded"
        except RebuildError as e:
            job.status, job.error = ("stopped" if job.stop.is_set() else "failed"), str(e)
        except Exception as e:  # reported in the job, never lost in a thread
            job.status, job.error = "failed", f"{type(e).__name__}: {e}"
        finally:
            for hold in holds[len(job.results) + 1 :]:
                hold.__exit__(None, None, None)
            job.finished_at = datetime.now(UTC)

    threading.Thread(target=run, name=f"rebuild-{job.id[:8]}", daemon=True).start()
    return JSONResponse(job.as_dict(), status_code=202,
                        headers={"Location": f"/v1/admin/rebuilds/{job.id}"})  # fmt: skip


@router.post("/projections/rebuild", status_code=202)
def rebuild_all(
    request: Request, c: ContainerDep, in_place: bool = False, restart: bool = False,
    require_identical: bool = False,
) -> JSONResponse:  # fmt: skip
    """Rebuild every projection, one after the other, in a background job."""
    names = [r.name for r in c.projections.runners]
    return _start(request, c, names, in_place, restart, require_identical)


@router.post("/projections/{name}/rebuild", status_code=202)
def rebuild_one(
    name: str, request: Request, c: ContainerDep, in_place: bool = False,
    restart: bool = False, require_identical: bool = False,
) -> JSONResponse:  # fmt: skip
    """Rebuild one projection (blue/green unless in_place) in a background job."""
    return _start(request, c, [name], in_place, restart, require_identical)


@router.get("/rebuilds")
def rebuilds(request: Request) -> list[dict[str, Any]]:
    return [job.as_dict() for job in _jobs(request).values()]


def _job(request: Request, job_id: str) -> Job:
    job = _jobs(request).get(job_id)
    if job is None:
        raise ApiError(404, "unknown_job", f"no rebuild job {job_id}")
    return job


@router.get("/rebuilds/{job_id}")
def rebuild_job(job_id: str, request: Request) -> dict[str, Any]:
    return _job(request, job_id).as_dict()


@router.delete("/rebuilds/{job_id}", status_code=202)
def stop_rebuild(job_id: str, request: Request) -> dict[str, Any]:
    """Stop the job after its current batch; the shadow is kept and a new job resumes it."""
    job = _job(request, job_id)
    job.stop.set()
    return job.as_dict()
