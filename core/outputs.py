"""A job's outputs for its owner: the list, and a short-lived read-only download URL for one of them.

A download costs one storage request (the job's point read): the URL is a user-delegation SAS signed in-function
with the worker's cached delegation key.
"""

from __future__ import annotations

from typing import Any

from core.auth import Principal
from core.errors import NotFound
from core.job_store import readable_job
from core.records import Output, iso_time
from core.services import get_settings, services


def list_outputs(caller: Principal, job_id: str) -> list[dict[str, Any]]:
    """Every output of a job the caller may see, with its storage URL (no token)."""
    job = readable_job(caller, job_id)
    store = services().outputs
    return [
        {**o.view(), "uri": store.blob_uri(job.job_id, o.blob_name), "links": {"download": _link(job_id, o)}}
        for o in job.outputs
    ]


def download(caller: Principal, job_id: str, output_id: str) -> dict[str, Any]:
    """A read-only SAS URL for one output of a job the caller may see: exactly the bytes recorded when the job
    ended, which a browser saves under the file's name as the recorded content type."""
    job = readable_job(caller, job_id)
    output = next((o for o in job.outputs if o.output_id == output_id), None)
    if output is None:
        raise NotFound(f"job {job_id} has no output {output_id!r}")
    grant = services().outputs.read_grant(
        job.job_id, output.blob_name, minutes=get_settings().download_minutes,
        filename=output.file.rsplit("/", 1)[-1], content_type=output.content_type,
    )
    return {"output_id": output.output_id, "uri": grant.uri, "token": grant.token, "url": grant.url,
            "expires_on": iso_time(grant.expires_on)}


def _link(job_id: str, output: Output) -> str:
    return f"/job/{job_id}/output/{output.output_id}"
