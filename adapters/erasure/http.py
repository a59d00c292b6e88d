"""`POST /v1/admin/erasure/viewers/{viewer_id}`: forget a viewer (docs/erasure.md).

The access rule is the caller's to give, so this module does not depend on how
authentication is wired: `app.include_router(erasure_router(dependencies=[allow()]))`
(admin only). Answers 200 with the report; forgetting twice answers 200 again with
`already_erased: true`.
"""

from collections.abc import Sequence
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from adapters.erasure.service import forget_viewer
from adapters.http.deps import ContainerDep, wait_seconds_query


def erasure_router(*, dependencies: Sequence[Any] = ()) -> APIRouter:
    router = APIRouter(prefix="/v1/admin/erasure", tags=["admin"], dependencies=list(dependencies))

    @router.post("/viewers/{viewer_id}")
    async def forget(
        viewer_id: UUID,
        c: ContainerDep,
        wait_seconds: Annotated[
            float,
            wait_seconds_query(
                "How long to wait for projections to reach the erasure before purging derived rows"
            ),
        ] = 2.0,
    ) -> dict[str, Any]:
        """Delete the viewer's data key and the read-model rows derived from the viewer."""
        report = await run_in_threadpool(forget_viewer, c, viewer_id, wait_seconds=wait_seconds)
        return report.as_dict() | {"summary": report.summary()}

    return router
