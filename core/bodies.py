"""The shapes of job request bodies, checked with pydantic: unknown members refused, types strict, sizes bounded."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from core.cases import MAX_METRICS, NAME_PATTERN, field_path
from core.errors import FieldProblem, InvalidBody
from core.limits import MAX_CASE_ID, OUTPUT_FILE
from core.states import REPORTED_PATTERN
from core.values import INVISIBLE, UNPRINTABLE

# One-line text refuses every control and invisible format character (core.values); multi-line text keeps tab,
# LF and CR. The simulator's report message keeps the older rule: the job wrapper strips C0 controls only.
NO_CONTROL = rf"^[^{UNPRINTABLE}]*$"
MULTILINE = rf"^[^\x00-\x08\x0b\x0c\x0e-\x1f{INVISIBLE}]*$"
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NO_CONTROL)
]
Text = Annotated[str, StringConstraints(max_length=4000, pattern=MULTILINE)]
ReportText = Annotated[
    str, StringConstraints(max_length=4000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")
]


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# JSON Schema's `integer`, what the document says, is any number without a fraction: 3.0 is one too. (After the
# bounds in `Annotated`, so that they stay `minimum`/`maximum` in the schema.)
WHOLE = BeforeValidator(_whole)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class JobCreate(_Body):
    """`POST /job`: which case, a title, and optionally a description and the caller's own name."""

    case_id: Annotated[int, Field(ge=1, le=MAX_CASE_ID), WHOLE]
    job_title: Title
    description: Text = ""
    user: str | None = Field(default=None, max_length=200)


class JobCopy(_Body):
    """`POST /job/{id}/copy`: optionally, the new job's title."""

    job_title: Title | None = None


class FieldValue(_Body):
    """One value to set: `value: null` puts the field back to its default."""

    name: str = Field(min_length=1, max_length=64)
    value: Any
    units: str | None = Field(default=None, max_length=40)


class JobPatch(_Body):
    """`PATCH /job/{id}`: any of title, description and values."""

    job_title: Title | None = None
    description: Text | None = None
    fields: list[FieldValue] | None = Field(default=None, max_length=500)


MAX_AXES = 8
MAX_AXIS_VALUES = 1000


class AxisBody(_Body):
    """One varied field of a study: `values`, or `from`/`to` with `step`, or with `count` (and `scale`)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    name: str = Field(min_length=1, max_length=64)
    values: list[Any] | None = Field(default=None, min_length=1, max_length=MAX_AXIS_VALUES)
    start: float | None = Field(default=None, alias="from", allow_inf_nan=False)
    stop: float | None = Field(default=None, alias="to", allow_inf_nan=False)
    step: float | None = Field(default=None, allow_inf_nan=False)
    count: Annotated[int, Field(ge=1, le=MAX_AXIS_VALUES), WHOLE] | None = None
    scale: Literal["linear", "log"] = "linear"


class StudyCreate(_Body):
    """`POST /study`: a case, a title, base values as a job's, and the axes that vary them."""

    case_id: Annotated[int, Field(ge=1, le=MAX_CASE_ID), WHOLE]
    title: Title
    description: Text = ""
    values: list[FieldValue] = Field(default_factory=list, max_length=500)
    axes: list[AxisBody] = Field(min_length=1, max_length=MAX_AXES)
    combine: Literal["grid", "zip"] = "grid"


MAX_OUTPUTS = 200


class OutputClaim(_Body):
    """An output the simulator says it uploaded: which of the case's outputs, and the file (blob) name."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    file: str = Field(max_length=300, pattern=OUTPUT_FILE)


# A metric's value: a finite number (a JSON integer is one too; true and false are not).
MetricName = Annotated[str, Field(pattern=NAME_PATTERN)]
MetricValue = Annotated[float, Field(allow_inf_nan=False)]
# `metrics` as the document says it: pydantic's own schema names the keys with `patternProperties`, which leaves
# other names open, where this one closes them; and only finite doubles are numbers here.
METRICS_SCHEMA = {
    "type": "object",
    "maxProperties": MAX_METRICS,
    "propertyNames": {"pattern": NAME_PATTERN},
    "additionalProperties": {
        "type": "number",
        "minimum": -sys.float_info.max,
        "maximum": sys.float_info.max,
    },
}
Metrics = Annotated[
    dict[MetricName, MetricValue], Field(max_length=MAX_METRICS), WithJsonSchema(METRICS_SCHEMA)
]


class StatusReport(_Body):
    """`PATCH /job/{id}/status` from the simulator. `status` is matched case-insensitively, aliases allowed."""

    status: str = Field(
        min_length=1, max_length=40, json_schema_extra={"pattern": REPORTED_PATTERN}
    )
    message: ReportText | None = Field(default=None, max_length=2000)
    progress: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)
    exit_code: Annotated[int, Field(ge=-255, le=1_000_000), WHOLE] | None = None
    outputs: list[OutputClaim] | None = Field(default=None, max_length=MAX_OUTPUTS)
    metrics: Metrics | None = None


Model = TypeVar("Model", bound=_Body)


def parse_body(model: type[Model], body: Any) -> Model:
    """`body` (parsed JSON) as `model`; `InvalidBody` listing every problem otherwise."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = [FieldProblem(field_path(e["loc"]) or "(body)", e["msg"]) for e in exc.errors()]
        names = ", ".join(p.name for p in problems)
        raise InvalidBody(f"the request body is not valid: {names}", errors=problems) from None
