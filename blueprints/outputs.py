"""The output routes: list a job's outputs, and sign a short-lived download URL for one. User token required."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from blueprints._contract import Answer, Call, flag, operation
from blueprints._lazy import lazy_module
from core.errors import NotFound, Unavailable

if TYPE_CHECKING:
    from core import outputs
    from core.views import OutputEntry
else:
    outputs = lazy_module("core.outputs")

bp = func.Blueprint()

REDIRECT = flag("redirect", "answer 302 to the URL", true=("true", "1"), false=("false", "0"))


@operation(
    bp,
    "GET",
    "job/{job_id}/output",
    auth="user",
    ok={200: ("OutputEntry",)},
    errors=(NotFound, Unavailable),
)
def list_outputs(call: Call) -> list[OutputEntry]:
    """The job's outputs: id, name, content type, size and storage URI (without a token)."""
    return outputs.list_outputs(call.caller, call.path("job_id"))


@operation(
    bp,
    "GET",
    "job/{job_id}/output/{output_id}",
    auth="user",
    ok={200: "DownloadGrant", 302: None},
    errors=(NotFound, Unavailable),
    query=(REDIRECT,),
    headers={302: ("Location",)},
)
def download_output(call: Call) -> Answer:
    """A read-only SAS URL for one output; `?redirect=true` answers 302 to it instead."""
    grant = outputs.download(call.caller, call.path("job_id"), call.path("output_id"))
    if call.query(REDIRECT):
        return Answer(None, 302, {"Location": grant.url, "Cache-Control": "no-store"})
    return Answer(grant, headers={"Cache-Control": "no-store"})
