"""State conflicts (409) and missing sub-entities (404) of the identity context."""

from __future__ import annotations

from bus.errors import Conflict, Forbidden, NotFound


class NotYourAccount(Forbidden):
    """A customer addressed another customer, or an id that names nobody: both answer alike, so a
    customer learns nothing of which ids exist."""

    def __init__(self) -> None:
        super().__init__("a customer may only act on its own account")


class CustomerClosed(Conflict):
    kind = "customer-closed"

    def __init__(self, customer_id: str) -> None:
        super().__init__(f"customer {customer_id} is closed and accepts no further changes")


class TransitionNotAllowed(Conflict):
    kind = "transition-not-allowed"

    def __init__(self, action: str, status: str) -> None:
        super().__init__(f"cannot {action} a customer whose status is {status}")


class AddressLimitReached(Conflict):
    kind = "address-limit-reached"

    def __init__(self, limit: int) -> None:
        super().__init__(f"a customer has at most {limit} addresses")


class AddressAlreadyExists(Conflict):
    kind = "address-exists"

    def __init__(self, address_id: str) -> None:
        super().__init__(f"address {address_id} already exists")


class LastAddressCannotBeRemoved(Conflict):
    kind = "last-address"

    def __init__(self) -> None:
        super().__init__("the last address cannot be removed")


class DefaultAddressRequired(Conflict):
    kind = "default-address-required"

    def __init__(self) -> None:
        super().__init__("one address is always the default; set another address as default instead")


class TierNotHigher(Conflict):
    kind = "tier-not-higher"

    def __init__(self, current: str, requested: str) -> None:
        super().__init__(f"tier only moves up: {requested} is not above {current}")


class EmailAlreadyRegistered(Conflict):
    """Refused at commit, on registration or an e-mail change: e-mail addresses are unique
    case-insensitively."""

    kind = "email-taken"

    def __init__(self) -> None:
        super().__init__("a customer with this email already exists")


class ExternalIdAlreadyRegistered(Conflict):
    """Raised by the registration handler: external ids are unique."""

    kind = "external-id-taken"

    def __init__(self) -> None:
        super().__init__("a customer with this external_id already exists")


class AddressNotFound(NotFound):
    def __init__(self, address_id: str) -> None:
        super().__init__(f"address {address_id}")
