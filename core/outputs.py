"""A job's outputs for its owner: the list, and a short-lived read-only download URL for one of them.

A download costs one storage request (the job's point read): the URL is a user-delegation SAS signed in-function
with the worker's cached delegation key.
"""

from __future__ import annotations

from core.auth import Principal
from core.errors import NotFound
from core.job_store import readable_job
from core.services import get_settings, services
from core.views import DownloadGrant, OutputEntry, download_grant, output_entry


def list_outputs(caller: Principal, job_id: str) -> list[OutputEntry]:
    """Every output of a job the caller may see, with its storage URL (no token)."""
    job = readable_job(caller, job_id)
    store = services().outputs
    return [output_entry(job_id, o, store.blob_uri(job.job_id, o.blob_name)) for o in job.outputs]


def download(caller: Principal, job_id: str, output_id: str) -> DownloadGrant:
    """A read-only SAS URL for one output of a job the caller may see: exactly the bytes recorded when the job
    ended, which a browser saves under the file's name as the recorded content type."""
    job = readable_job(caller, job_id)
    output = next((o for o in job.outputs if o.output_id == output_id), None)
    if output is None:
        raise NotFound(f"job {job_id} has no output {output_id!r}")
    grant = services().outputs.read_grant(
        job.job_id,
        output.blob_name,
        minutes=get_settings().download_minutes,
        filename=output.file.rsplit("/", 1)[-1],
        content_type=output.content_type,
    )
    return download_grant(output, grant)
