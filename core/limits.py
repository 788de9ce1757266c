"""What the HTTP routes take in their paths and queries, in one place: the routes enforce it and the OpenAPI
document (`blueprints._contract`, `blueprints.openapi`) declares it, so the two cannot drift apart.

Standard library only: the blueprints import it at cold start, before any pydantic model is built.
"""

from __future__ import annotations

MAX_PAGE = (
    100_000  # `GET /case?page=`: far past the last page of any catalog, and a bound all the same
)
MAX_PER_PAGE = 100  # `per_page=` of every list
MAX_CASE_ID = (
    999_999_999  # `GET /job?case_id=` and a new job's `case_id`: 9 digits, as a case id in a path
)
# A case in a path: its id, a whole number of up to 9 digits, or its name (`core.cases.SLUG_PATTERN`). A longer
# run of digits reads as a name, which no case has.
CASE_REF = r"^(?:[0-9]{1,9}|[a-z0-9][a-z0-9-]{1,62})$"
# A `GET /job` cursor, as the next page's Link gives it: the table's continuation token in unpadded base64url.
CURSOR = r"^[A-Za-z0-9_-]+$"
MAX_CURSOR = 2000
# An output file's path in the job folder, also its blob name (`core.bodies.OutputClaim`): plain segments, no dot
# files, no "..", at most five deep. In a path (an `output_id`) `~` stands for "/" (`core.reports.output_id`).
OUTPUT_FILE = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,99}){0,4}$"
