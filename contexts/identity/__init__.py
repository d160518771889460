"""The identity bounded context: customers, profiles, e-mail addresses, address books, account lifecycle,
tiers."""

from importlib.resources import files

from bus.module import ContextModule
from contexts.identity import account, addresses, email_change, erasure, profile, registration, tier
from contexts.identity.api.addresses import AddressBookController
from contexts.identity.api.customers import CustomerController
from contexts.identity.personal import PersonalData
from contexts.identity.projections import PROJECTIONS

module = ContextModule(
    name="identity",
    migrations=files(__name__) / "migrations",
    handlers={
        registration.RegisterCustomer: registration.register_customer,
        profile.UpdateProfile: profile.update_profile,
        email_change.ChangeEmail: email_change.change_email,
        addresses.AddAddress: addresses.add_address,
        addresses.UpdateAddress: addresses.update_address,
        addresses.RemoveAddress: addresses.remove_address,
        addresses.SetDefaultAddress: addresses.set_default_address,
        account.SuspendAccount: account.suspend_account,
        account.ReactivateAccount: account.reactivate_account,
        account.CloseAccount: account.close_account,
        tier.UpgradeTier: tier.upgrade_tier,
        erasure.ErasePersonalData: erasure.erase_personal_data,
    },
    projections=PROJECTIONS,
    route_handlers=[CustomerController, AddressBookController],
    sealing=PersonalData,
)
