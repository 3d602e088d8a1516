"""Value types shared by the settings models: names, durations, percentages, nginx words."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

DNS_LABEL_RE = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_DNS_LABEL = re.compile(DNS_LABEL_RE)

_DURATION = re.compile(r"(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")  # [0-9]: \d also matches non-ASCII digits
_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
DURATION_PATTERN = r"^([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$"


# Prometheus/Alertmanager durations are int64 nanoseconds (~292 years); no setting needs more than years.
MAX_DURATION_SECONDS = 520 * 604800


def parse_duration(value: Any) -> Any:
    """'5m', '1h30m', '0s' -> seconds. A bare number is refused: 5 could mean seconds or minutes."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '5m', not a boolean")
    if isinstance(value, (int, float)):
        raise ValueError(f"a duration needs a unit: write '{value}s' or '{value}m', not {value}")
    if not isinstance(value, str):
        raise ValueError("expected a duration such as '5m'")
    match = _DURATION.fullmatch(value)
    if not value or not match:
        raise ValueError(f"{value!r} is not a duration; use a number with a unit, e.g. '30s', '5m', '1h30m' (units w d h m s)")
    if len(value) > 32:  # before int(): thousands of digits would hit Python's int-conversion limit
        raise ValueError(f"{value[:32]!r}... is not a plausible duration")
    seconds = sum(int(n) * size for n, (_, size) in zip(match.groups(), _UNITS, strict=True) if n)
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"{value!r} is longer than {format_duration(MAX_DURATION_SECONDS)} (10 years); "
                         "Prometheus and Alertmanager cannot represent much longer durations")
    return seconds


@lru_cache(maxsize=1024)
def format_duration(seconds: int) -> str:
    """Canonical spelling used in every artifact: largest units first, no zero parts; 0 -> '0s'."""
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_period(seconds: int) -> str:
    """A duration as people and SLO tools name long ones: in days from a day on (30d, not 4w2d), else canonical."""
    days, rest = divmod(seconds, 86400)
    return f"{days}d{format_duration(rest) if rest else ''}" if days else format_duration(seconds)


# Durations are held as whole seconds; the JSON Schema still shows users the string form they write.
Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["30s", "5m", "1h30m"]}),
]


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a DNS label: use 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label), WithJsonSchema({"type": "string", "pattern": DNS_LABEL_RE, "maxLength": 63})]

# Kubernetes label keys: an optional DNS-subdomain prefix and "/", then a name of at most 63 characters.
LABEL_KEY_RE = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
LABEL_VALUE_RE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
_LABEL_KEY, _LABEL_VALUE = re.compile(LABEL_KEY_RE), re.compile(LABEL_VALUE_RE)


def _label_key(value: str) -> str:
    prefix, _, _name = value.rpartition("/")
    if not _LABEL_KEY.fullmatch(value) or len(prefix) > 253:
        raise ValueError(f"{value!r} is not a valid Kubernetes label key (an optional DNS prefix and '/', then at most 63 "
                         "letters, digits, '-', '_' or '.', starting and ending with a letter or digit)")
    return value


def _label_value(value: str) -> str:
    if not _LABEL_VALUE.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid Kubernetes label value (at most 63 letters, digits, '-', '_' or '.', "
                         "starting and ending with a letter or digit)")
    return value


LabelKey = Annotated[str, AfterValidator(_label_key), WithJsonSchema({"type": "string", "pattern": LABEL_KEY_RE})]
LabelValue = Annotated[str, AfterValidator(_label_value), WithJsonSchema({"type": "string", "pattern": LABEL_VALUE_RE})]
KubernetesLabels = dict[LabelKey, LabelValue]


def _port_name(value: str) -> str:
    """A Service port name (IANA_SVC_NAME): what a ServiceMonitor's `port` must name (it refuses numbers)."""
    if not (1 <= len(value) <= 15 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", value) and "--" not in value
            and re.search(r"[a-z]", value)):
        raise ValueError(f"{value!r} is not a Kubernetes port name: 1-15 lower-case letters, digits and '-', at least one "
                         "letter, no '-' at either end or twice in a row")
    return value


PortName = Annotated[str, AfterValidator(_port_name), WithJsonSchema({"type": "string", "maxLength": 15})]

PERCENT_RE = r"^(100|[1-9]?[0-9])%$"
Percent = Annotated[str, Field(pattern=PERCENT_RE)]
INT32_MAX = 2**31 - 1  # Kubernetes int32 fields (replicas, budgets, policy values)
IntOrPercent = Annotated[int, Field(ge=0, le=INT32_MAX)] | Percent

# nginx variables are [A-Za-z0-9_]; a cookie named "session-id" has no $cookie_ variable at all.
COOKIE_NAME_RE = r"^[A-Za-z0-9_]{1,64}$"
NGINX_VARIABLE_RE = r"^\$[A-Za-z_][A-Za-z0-9_]*$"

# host[:port] where host is a DNS name, an IPv4 address or a bracketed IPv6 address.
SERVER_ADDRESS_RE = (
    r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*)"
    r"(:([1-9][0-9]{0,4}))?$"
)


def split_address(address: str) -> tuple[str, int | None]:
    """'10.0.0.1:80' -> ('10.0.0.1', 80); '[::1]' -> ('[::1]', None). Assumes SERVER_ADDRESS_RE matched."""
    if address.startswith("["):
        end = address.index("]") + 1
        host, rest = address[:end], address[end:]
    else:
        host, _, port = address.partition(":")
        rest = f":{port}" if port else ""
    return host, int(rest[1:]) if rest else None

NGINX_VERSION_RE = r"^[1-9][0-9]*\.[0-9]+(\.[0-9]+)?$"


def percent_value(value: int | str, total: int, *, round_up: bool) -> int:
    """Resolve an int-or-percent the way Kubernetes does (ceil for minAvailable/maxSurge, floor for maxUnavailable)."""
    if isinstance(value, int):
        return value
    pct = int(value[:-1])
    whole, rest = divmod(pct * total, 100)
    return whole + (1 if round_up and rest else 0)


def format_number(value: int | float) -> str:
    """Canonical number text: integers without a decimal point, other floats in shortest round-trip form."""
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)
