"""Who a web user is to the PBX: their company, their role, their extension."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from pbx.models import Company, Extension, Membership, Role


def test_the_named_users_belong_to_the_company_in_their_roles(
    alice: User, bob: User, carol: User, company: Company
) -> None:
    roles = {u.username: (u.membership.company, u.membership.role) for u in (alice, bob, carol)}
    assert roles == {
        "alice": (company, Role.OPERATOR),
        "bob": (company, Role.END_USER),
        "carol": (company, Role.ADMINISTRATOR),
    }
    assert alice.membership.runs_the_console
    assert carol.membership.runs_the_console
    assert not bob.membership.runs_the_console


def test_an_extension_of_another_company_is_refused(bob: User) -> None:
    other = Company.objects.create(name="Other S.r.l.")
    foreign = Extension.objects.create(company=other, number="201", display_name="Someone")
    membership = bob.membership
    membership.extension = foreign
    with pytest.raises(ValidationError) as refused:
        membership.full_clean()
    assert "extension" in refused.value.message_dict


def test_a_user_belongs_to_one_company_only(alice: User) -> None:
    other = Company.objects.create(name="Other S.r.l.")
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(user=alice, company=other, role=Role.OPERATOR)


@pytest.mark.django_db(transaction=True)
def test_the_engine_learns_the_operator_number_and_the_operators_phones(
    alice: User, bob: User, company: Company
) -> None:
    """What routes calls to the queue, and whose phone picks it up, comes from here."""
    import asyncio

    from pbx.config import OrmDirectory

    operator = Extension.objects.create(company=company, number="200", display_name="Op")
    desk = Extension.objects.create(company=company, number="201", display_name="Bob")
    Membership.objects.filter(user=alice).update(extension=operator)
    bob.membership.extension = desk
    bob.membership.save()  # a save moves the stamp: running engines reload
    company.operator_number = "9"
    company.save()

    async def ask() -> tuple[str, frozenset[str]]:
        directory = OrmDirectory()
        await directory.refresh()
        return (
            await directory.operator_number(company.id),
            await directory.operator_extensions(company.id),
        )

    assert asyncio.run(ask()) == ("9", frozenset({"200"}))  # bob is an end user, not one
