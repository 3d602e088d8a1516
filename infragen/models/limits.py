"""The app's own request limits as settings: validation (payload, batch, page, date range, uploads), per-user
feature quotas, dynamic throttling and the session store. One pydantic model per section, with every rule about a
single value or section (as `infragen.models.settings`, whose `Section` they share).

The app reads all of them from app.env (the key names are a contract with it); nginx enforces the body sizes
before the app sees a request (`nginx/location.conf`, one `location =` per upload in `nginx/server.conf`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .types import Duration

MiB = 1024 * 1024
MAX_BYTES = 2**40  # 1 TiB: beyond any request body nginx should buffer; catches a unit slip (bytes written as bits)

# A path nginx matches exactly (`location = /path`), written without quoting: no spaces, braces, `;`, `~` or `%`
# (nginx compares the decoded URI, so an escape written here would never match).
UPLOAD_PATH_RE = r"^/[A-Za-z0-9._/-]*$"
# A simple extension (`csv`, `xlsx`) or a MIME type (`text/csv`, `application/vnd.ms-excel`), lower case.
ALLOWED_TYPE_RE = r"^([a-z0-9]{1,16}|[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126})$"
# A feature becomes part of an env key (QUOTA_<FEATURE>_LIMIT): letters, digits and _, lower case, so two
# features can never upper-case to the same key.
FEATURE_RE = r"^[a-z][a-z0-9_]{0,62}$"


def _form(text: str) -> dict[str, Any]:
    return {"x-form": text}


class _Section(BaseModel):
    # As settings.Section (not imported: settings imports this module).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class Upload(_Section):
    path: str = Field(pattern=UPLOAD_PATH_RE, json_schema_extra=_form("an absolute path such as /api/v1/reports/upload"),
                      description="The upload endpoint's path; nginx gives it its own `location =` with max_bytes.")
    max_bytes: int = Field(ge=1, le=MAX_BYTES, description="Largest whole request body in bytes, multipart overhead "
                                                           "included (nginx's client_max_body_size for this path).")
    allowed_types: list[Annotated[str, Field(pattern=ALLOWED_TYPE_RE)]] = Field(
        min_length=1, json_schema_extra=_form("simple extensions (csv, xlsx) or MIME types (text/csv), lower case"),
        description="File types the app accepts here (it checks them: nginx sees only multipart/form-data).")

    @field_validator("allowed_types")
    @classmethod
    def _unique_types(cls, value: list[str]) -> list[str]:
        for i, kind in enumerate(value):
            if kind in value[:i]:
                raise ValueError(f"{kind!r} is listed twice")
        return value


class Validation(_Section):
    max_payload_bytes: int = Field(MiB, ge=1, le=MAX_BYTES, description="Largest request body in bytes everywhere but "
                                                                        "the uploads (nginx answers 413 above it). "
                                                                        "Default 1 MiB (1048576).")
    max_batch_items: int = Field(1000, ge=1, le=2**31 - 1, description="Most items in one batch request.")
    max_page_size: int = Field(100, ge=1, le=2**31 - 1, description="Largest page a list endpoint returns (1 to this).")
    max_date_range_days: int = Field(90, ge=1, le=36500, description="Longest date range a query may span, in days.")
    uploads: list[Upload] = Field(default_factory=list, description="Upload endpoints, each with its own body size "
                                                                    "limit and file types.")

    @field_validator("uploads")
    @classmethod
    def _unique_paths(cls, value: list[Upload]) -> list[Upload]:
        seen: set[str] = set()
        for upload in value:
            if upload.path in seen:
                raise ValueError(f"upload path {upload.path} is listed twice (nginx refuses a duplicate location)")
            seen.add(upload.path)
        return value


class Quota(_Section):
    limit: int = Field(ge=1, le=2**31 - 1, description="Uses of the feature a user gets per period.")
    period: Literal["daily", "monthly"] = Field(description="When the count resets: daily or monthly.")


Feature = Annotated[str, Field(pattern=FEATURE_RE)]


class Throttling(_Section):
    cpu_percent: int = Field(80, ge=1, le=100, description="CPU use, in percent of the container's request (as the "
                                                           "HPA's target), above which the app lowers its limits.")
    memory_percent: int = Field(80, ge=1, le=100, description="Memory use, in percent of the container's request, "
                                                              "above which the app lowers its limits.")
    min_factor: float = Field(0.5, gt=0, le=1, description="The lowest share of its limits the app keeps while "
                                                           "throttling (0.5: never below half).")
    recovery_seconds: int = Field(300, ge=1, le=86400, description="Seconds the app takes to restore full limits "
                                                                   "once below the thresholds, gradually.")


class Sessions(_Section):
    ttl: Duration = Field(86400, description="Lifetime of a session in the Redis session store. Default 24h.")

    @field_validator("ttl")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("ttl must be at least 1s: a session that expires at once logs everyone out")
        return value
