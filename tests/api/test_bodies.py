"""A request body names its fields as the command it feeds does, checked when the body is defined."""

import pytest

from contexts.edge.bodies import Body, command_from
from contexts.identity.account import SuspendAccount
from contexts.identity.profile import UpdateProfile


class ProfileChange(Body, command=UpdateProfile):
    first_name: str


class TestBodyFeedsCommand:
    def test_a_field_the_command_lacks_fails_at_definition_naming_body_command_and_field(self) -> None:
        with pytest.raises(TypeError) as refused:

            class NicknameChange(Body, command=UpdateProfile):
                first_name: str
                nickname: str

        assert str(refused.value) == "body NicknameChange feeds UpdateProfile, which has no field 'nickname'"

    def test_a_body_derived_from_one_that_feeds_a_command_is_checked_against_it_too(self) -> None:
        with pytest.raises(
            TypeError, match="body WithNickname feeds UpdateProfile, which has no field 'nickname'"
        ):

            class WithNickname(ProfileChange):
                nickname: str

    def test_the_body_fields_fill_the_command_beside_the_given_values(self) -> None:
        command = command_from(
            UpdateProfile, ProfileChange(first_name="Ada"), customer_id="c-1", expected_version=3
        )

        assert command == UpdateProfile(customer_id="c-1", expected_version=3, first_name="Ada")

    def test_a_body_cannot_feed_another_command_than_its_own(self) -> None:
        with pytest.raises(TypeError, match="body ProfileChange does not feed SuspendAccount"):
            command_from(SuspendAccount, ProfileChange(first_name="Ada"), customer_id="c-1")

    def test_a_body_that_feeds_no_command_is_still_a_strict_body(self) -> None:
        class Probe(Body):
            name: str

        assert Probe.command is None
        assert Probe.__struct_config__.forbid_unknown_fields
