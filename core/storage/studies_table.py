"""Studies in Azure Table Storage: one entity per study, in a table of their own, every write conditional.

The study id has a job id's shape (`core.records`): PartitionKey is the owner key, so a study is one point read
and a page of a caller's studies one partition query, newest first. Its runs are jobs in the jobs table, in the
same owner's partition, carrying the study's id.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import TableClient, UpdateMode

from core.records import Study, owner_key, split_job_id
from core.storage.jobs_table import decode_cursor, encode_cursor, translated


class StudiesTable:
    """The study repository on one `TableClient`."""

    def __init__(self, client: TableClient) -> None:
        self._client = client

    def insert(self, study: Study) -> Study:
        """Store a new study."""
        with translated(study.study_id, "study"):
            meta = self._client.create_entity(to_entity(study))
        return replace(study, etag=meta.get("etag"))

    def get(self, study_id: str) -> Study:
        """The study with this id (one point read); `NotFound` when there is none."""
        partition, row = split_job_id(study_id, "study_id")
        with translated(study_id, "study"):
            return from_entity(self._client.get_entity(partition, row))

    def replace(self, study: Study) -> Study:
        """Write `study` if it is unchanged since it was read."""
        with translated(study.study_id, "study"):
            meta = self._client.update_entity(
                to_entity(study),
                mode=UpdateMode.REPLACE,
                etag=study.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        return replace(study, etag=meta.get("etag"))

    def delete(self, study: Study) -> None:
        """Remove `study` if it is unchanged since it was read."""
        partition, row = split_job_id(study.study_id, "study_id")
        with translated(study.study_id, "study"):
            self._client.delete_entity(
                partition, row, etag=study.etag, match_condition=MatchConditions.IfNotModified
            )

    def page(self, owner: str, per_page: int, cursor: str | None) -> tuple[list[Study], str | None]:
        """One page of the owner's studies, newest first (one request), and the next page's cursor."""
        token: Any = decode_cursor(cursor)
        pages: Any = self._client.query_entities(
            "PartitionKey eq @pk and owner eq @owner",
            parameters={"pk": owner_key(owner), "owner": owner},
            results_per_page=per_page,
        ).by_page(continuation_token=token)
        with translated(None, "study"):
            studies = [from_entity(e) for e in next(pages)]
        return studies, encode_cursor(pages.continuation_token)


def to_entity(study: Study) -> dict[str, Any]:
    """The table entity of a study (values and axes as JSON text)."""
    partition, row = split_job_id(study.study_id, "study_id")
    return {
        "PartitionKey": partition,
        "RowKey": row,
        "owner": study.owner,
        "owner_name": study.owner_name,
        "case_id": study.case_id,
        "title": study.title,
        "description": study.description,
        "created_at": study.created_at,
        "updated_at": study.updated_at,
        "values": json.dumps(study.values),
        "axes": json.dumps(list(study.axes)),
        "combine": study.combine,
        "runs": study.runs,
        "attempt": study.attempt,
    }


def from_entity(entity: Any) -> Study:
    """The study stored in `entity`."""
    return Study(
        study_id=f"{entity['PartitionKey']}-{entity['RowKey']}",
        owner=entity["owner"],
        owner_name=entity["owner_name"],
        case_id=int(entity["case_id"]),
        title=entity["title"],
        description=entity.get("description", ""),
        created_at=entity["created_at"],
        updated_at=entity["updated_at"],
        values=json.loads(entity.get("values", "{}")),
        axes=tuple(json.loads(entity.get("axes", "[]"))),
        combine=entity.get("combine", "grid"),
        runs=int(entity.get("runs", 0)),
        attempt=int(entity.get("attempt", 1)),
        etag=entity.metadata.get("etag") if hasattr(entity, "metadata") else None,
    )
