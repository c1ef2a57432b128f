"""The demo company's reception, ready to try from a registered softphone (`make run`).

- 600 "Vendite": a hunt group of 201, 202, 203 (Uniform sequential: each call starts one
  further), to the operator when nobody answers.
- 610 "Assistenza": a hunt group of 204 and 205 ringing together (Ring all).
- 700 "Reception": a Multiselection with spoken Italian menus. On weekdays 08:00-19:00 the
  main menu: 1 sales (600), 2 the support menu (1 support 610, * back), 0 the operator,
  # replay. At other hours a "closed" menu that still offers the main menu on 1.
  The company number 0212345700 from the carrier reaches it too.

The announcements are spoken by espeak-ng when it is installed; without it they are tones
(a message says so), and the menus work the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pbx.announcement_store import keep_announcement
from pbx.media import speech
from pbx.media.announcement import check_announcement, encode_pcm16k_wav
from pbx.media.tone import sine
from pbx.models import (
    Algorithm,
    Announcement,
    AnnouncementSource,
    Company,
    Did,
    DidTarget,
    Extension,
    Fallback,
    HuntGroup,
    HuntMember,
    KeyAction,
    Menu,
    MenuKey,
    Multiselection,
    SchedulePeriod,
    Site,
    Trunk,
)

log = logging.getLogger(__name__)

ATTENDANT_NUMBER = "700"
ATTENDANT_DID = "0212345700"
HUNT_GROUPS = [
    ("600", "Vendite", "Milano", Algorithm.UNIFORM_SEQUENTIAL, ["201", "202", "203"]),
    ("610", "Assistenza", "Roma", Algorithm.RING_ALL, ["204", "205"]),
]
PROMPTS = {
    "Benvenuto": "Benvenuti in Demo. Per l'ufficio vendite premete 1. Per l'assistenza "
    "premete 2. Per parlare con l'operatore premete 0. Per riascoltare premete cancelletto.",
    "Assistenza": "Assistenza tecnica. Per parlare con un tecnico premete 1. Per tornare al "
    "menu precedente premete asterisco.",
    "Chiuso": "I nostri uffici sono aperti dal lunedì al venerdì, dalle 8 alle 19. Per "
    "provare comunque il menu principale premete 1. Arrivederci.",
}
TONES = {"Benvenuto": 600.0, "Assistenza": 900.0, "Chiuso": 400.0}


@dataclass
class ReceptionResult:
    created: list[str]
    spoken: bool


def seed_reception(company: Company) -> ReceptionResult:
    """Create what is missing of the demo reception (idempotent)."""
    created: list[str] = []
    for number, name, site, algorithm, members in HUNT_GROUPS:
        _hunt_group(company, number, name, site, algorithm, members, created)
    spoken = speech.available()
    if Multiselection.objects.filter(company=company, number=ATTENDANT_NUMBER).exists():
        return ReceptionResult(created, spoken)
    if not spoken:
        log.warning("espeak-ng is not installed: the demo menus say their tones instead")
    announcements = {name: _announcement(company, name, spoken) for name in PROMPTS}
    attendant = Multiselection.objects.create(
        company=company, number=ATTENDANT_NUMBER, name="Reception"
    )
    main = _menu(attendant, "Benvenuto", "Menu principale", announcements)
    support = _menu(attendant, "Assistenza", "Assistenza tecnica", announcements)
    closed = _menu(attendant, "Chiuso", "Fuori orario", announcements)
    _keys(
        main,
        {
            "1": (KeyAction.HUNT_GROUP, "600", None),
            "2": (KeyAction.MENU, "", support),
            "0": (KeyAction.OPERATOR, "", None),
            "#": (KeyAction.REPLAY, "", None),
            "timeout": (KeyAction.OPERATOR, "", None),
        },
    )
    _keys(
        support,
        {
            "1": (KeyAction.HUNT_GROUP, "610", None),
            "*": (KeyAction.BACK, "", None),
            "timeout": (KeyAction.BACK, "", None),
        },
    )
    _keys(
        closed,
        {"1": (KeyAction.MENU, "", main), "timeout": (KeyAction.HANGUP, "", None)},
    )
    for weekday in range(5):
        SchedulePeriod.objects.create(
            multiselection=attendant, weekday=weekday, start=8 * 60, end=19 * 60, menu=main
        )
    attendant.default_menu = closed
    attendant.save()
    created.append(f"Multiselection {ATTENDANT_NUMBER}")
    trunk = Trunk.objects.filter(company=company).first()
    if trunk is not None and not Did.objects.filter(number=ATTENDANT_DID).exists():
        Did.objects.create(
            trunk=trunk,
            number=ATTENDANT_DID,
            target_kind=DidTarget.MULTISELECTION,
            multiselection=attendant,
        )
        created.append(f"number {ATTENDANT_DID} -> {ATTENDANT_NUMBER}")
    return ReceptionResult(created, spoken)


def _hunt_group(
    company: Company,
    number: str,
    name: str,
    site: str,
    algorithm: Algorithm,
    members: list[str],
    created: list[str],
) -> None:
    if HuntGroup.objects.filter(company=company, number=number).exists():
        return
    group = HuntGroup.objects.create(
        company=company,
        number=number,
        name=name,
        site=Site.objects.filter(company=company, name=site).first(),
        algorithm=algorithm,
        fallback=Fallback.OPERATOR,
    )
    for position, member in enumerate(members):
        extension = Extension.objects.filter(company=company, number=member).first()
        if extension is not None:
            HuntMember.objects.create(
                group=group, extension=extension, position=position, ring_time=15
            )
    created.append(f"hunt group {number}")


def _announcement(company: Company, name: str, spoken: bool) -> Announcement:
    existing = Announcement.objects.filter(company=company, name=name).first()
    if existing is not None:
        return existing
    text = PROMPTS[name]
    if spoken:
        data = speech.synthesise(text, "it")
        source = AnnouncementSource.SPEECH
    else:
        data = encode_pcm16k_wav(sine(TONES[name], 2.0, rate=16000, amplitude=0.3))
        source = AnnouncementSource.UPLOAD
    return keep_announcement(
        company, [name], data, check_announcement(data), source, text if spoken else ""
    )


def _menu(
    attendant: Multiselection, name: str, description: str, prompts: dict[str, Announcement]
) -> Menu:
    return Menu.objects.create(
        multiselection=attendant,
        name=name,
        description=description,
        announcement=prompts[name],
        timeout=6,
        retries=2,
    )


def _keys(menu: Menu, keys: dict[str, tuple[str, str, Menu | None]]) -> None:
    for key, (action, number, target) in keys.items():
        MenuKey.objects.create(menu=menu, key=key, action=action, number=number, target_menu=target)
