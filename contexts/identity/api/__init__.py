"""Identity's HTTP API: request bodies, each feeding the command of the same field names, and
created answers; the routes live in the modules beside."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from contexts.edge import wire
from contexts.edge.bodies import Body
from contexts.identity.account import SuspendAccount
from contexts.identity.addresses import AddAddress, UpdateAddress
from contexts.identity.email_change import ChangeEmail
from contexts.identity.profile import UpdateProfile
from contexts.identity.registration import RegisterCustomer
from contexts.identity.tier import UpgradeTier
from contexts.identity.values import AddressLabel, Tier

_PAST = wire.past_date_pattern(date.today())
Name = Annotated[str, wire.text(100), Meta(examples=["Ada"])]
Phone = Annotated[
    str,
    wire.pattern(wire.PHONE_PATTERN, description="digits, spaces, '-', '(' and ')' after an optional '+'"),
    Meta(examples=["+44 20 7946 0958"]),
]
BirthDate = Annotated[
    date,
    Meta(examples=["1990-12-10"], extra_json_schema={"pattern": _PAST, "description": "not in the future"}),
]
Latitude = Annotated[float, wire.coordinate(90), Meta(examples=[51.5074])]
Longitude = Annotated[float, wire.coordinate(180), Meta(examples=[-0.1345])]
Label = Annotated[str, wire.one_of(AddressLabel), Meta(examples=["Home"])]
Email = Annotated[str, wire.pattern(wire.EMAIL_PATTERN, max_length=254)]
_GEO_BOTH = {
    "required": ["geo_lat", "geo_lng"],
    "properties": {"geo_lat": {"type": "number"}, "geo_lng": {"type": "number"}},
}
_GEO_CLEARED = {
    "required": ["geo_lat", "geo_lng"],
    "properties": {"geo_lat": {"type": "null"}, "geo_lng": {"type": "null"}},
}
_GEO_OMITTED = {"not": {"anyOf": [{"required": ["geo_lat"]}, {"required": ["geo_lng"]}]}}


class Registration(Body, command=RegisterCustomer):
    external_id: Annotated[  # not blank, kept exactly as given
        str,
        wire.pattern(rf"^[^\x00]*[^{wire.WS}\x00][^\x00]*$", max_length=255),
        Meta(examples=["crm-10042"]),
    ]
    email: Annotated[Email, Meta(examples=["ada@example.com"])]
    first_name: Name
    last_name: Annotated[str, wire.text(100), Meta(examples=["Lovelace"])]
    phone: Phone | None = None
    date_of_birth: BirthDate | None = None


class ProfileChange(Body, command=UpdateProfile):
    first_name: Name | UnsetType = UNSET
    last_name: Name | UnsetType = UNSET
    phone: Phone | UnsetType | None = UNSET
    date_of_birth: BirthDate | UnsetType | None = UNSET


class EmailChange(Body, command=ChangeEmail):
    email: Annotated[
        Email,
        Meta(
            examples=["ada.lovelace@example.org"],
            description="unique regardless of case (409); stored as given, so a change of case is a change",
        ),
    ]


class EmailLookup(Body):
    """Who holds an e-mail address: a read, sent as a body so that the address stays out of URLs (and
    so out of access logs, proxies' logs and traces)."""

    email: Annotated[Email, Meta(examples=["ada@example.com"], description="matched regardless of case")]


class NewAddress(Body, command=AddAddress):
    schema_extra: ClassVar[dict[str, Any]] = {
        "anyOf": [_GEO_BOTH, {"properties": _GEO_CLEARED["properties"]}],
        "description": "geo_lat and geo_lng go together",
    }

    street: Annotated[str, wire.text(255), Meta(examples=["12 St James's Square"])]
    city: Annotated[str, wire.text(100), Meta(examples=["London"])]
    postal_code: Annotated[str, wire.text(20), Meta(examples=["SW1Y 4LB"])]
    country: Annotated[str, wire.text(100), Meta(examples=["United Kingdom"])]
    label: Label = "Home"
    state: Annotated[str, wire.optional_text(100)] | None = None
    is_default: bool = False
    geo_lat: Latitude | None = None
    geo_lng: Longitude | None = None


class AddressChange(Body, command=UpdateAddress):
    schema_extra: ClassVar[dict[str, Any]] = {
        "anyOf": [_GEO_BOTH, _GEO_CLEARED, _GEO_OMITTED],
        "description": "geo_lat and geo_lng change together",
    }

    label: Label | UnsetType = UNSET
    street: Annotated[str, wire.text(255)] | UnsetType = UNSET
    city: Annotated[str, wire.text(100)] | UnsetType = UNSET
    state: Annotated[str, wire.optional_text(100)] | UnsetType | None = UNSET
    postal_code: Annotated[str, wire.text(20)] | UnsetType = UNSET
    country: Annotated[str, wire.text(100)] | UnsetType = UNSET
    is_default: bool | UnsetType = UNSET
    geo_lat: Latitude | UnsetType | None = UNSET
    geo_lng: Longitude | UnsetType | None = UNSET


class Suspension(Body, command=SuspendAccount):
    reason: Annotated[str, wire.text(500), Meta(examples=["chargeback under review"])]


class TierChange(Body, command=UpgradeTier):
    new_tier: Annotated[
        str, wire.one_of(Tier), Meta(examples=["Gold"], description="only upwards: same or lower is 409")
    ]


class CustomerCreated(msgspec.Struct, frozen=True):
    customer_id: Annotated[str, Meta(examples=["0b5e6c1e-3f4a-4c55-9a43-2f1d8f0c9e21"])]
    version: Annotated[int, Meta(examples=[1])]


class AddressCreated(msgspec.Struct, frozen=True):
    address_id: Annotated[str, Meta(examples=["7d2f9a64-51b8-4c1e-a0e3-6b9c2d4e8f10"])]
    version: Annotated[int, Meta(examples=[2])]
