"""The company's reception: announcements, hunt groups ("Call Distributor") and the
auto-attendant ("Multiselection") with its schedule, holidays and menus (SPEC E3-E6).

The engine reads all of it through its Directory (pbx/config.py) as plain data; what an
algorithm must remember between calls (the member that took the last call) is kept here too, so
that it survives a restart and is shared by every node.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from pbx.models.telephony import Company, Extension, Site, short_number_validator

outside_or_inside_validator = RegexValidator(
    r"^[0-9*#]{1,24}$", _("A number: digits only (0 first for an outside number).")
)


def announcements_dir() -> Path:
    """Where announcement files live: under the var folder, never under the static root."""
    return Path(settings.CENTRALINO_ANNOUNCEMENTS_DIR)


class AnnouncementSource(models.TextChoices):
    UPLOAD = "upload", _("Uploaded file")
    BROWSER = "browser", _("Recorded in the browser")
    PHONE = "phone", _("Recorded by phone")
    SPEECH = "speech", _("Speech synthesis")


class Announcement(models.Model):
    """A recorded message a menu plays. The file's name is random; it is never overwritten
    (a new recording is a new file), so the engine may cache what it decoded by path."""

    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="announcements", verbose_name=_("company")
    )
    name = models.CharField(_("name"), max_length=120)
    source = models.CharField(
        _("source"), max_length=10, choices=AnnouncementSource.choices, editable=False
    )
    text = models.TextField(_("text"), blank=True, help_text=_("What the speech synthesis says."))
    file_name = models.CharField(max_length=64, editable=False, unique=True)
    encoding = models.CharField(_("format"), max_length=10, editable=False)
    duration = models.FloatField(_("duration (s)"), editable=False, default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("announcement")
        verbose_name_plural = _("announcements")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="announcement_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def new_file_name() -> str:
        return f"{secrets.token_hex(16)}.wav"

    @property
    def path(self) -> Path:
        return announcements_dir() / self.file_name

    def used_by(self) -> list[Menu]:
        return list(self.menus.select_related("multiselection").order_by("name"))


class Algorithm(models.TextChoices):
    """The five ways a hunt group looks for a free member (SPEC E6; pbx/engine/hunt.py)."""

    LINEAR = "linear", _("Linear")
    CIRCULAR = "circular", _("Circular")
    UNIFORM_SEQUENTIAL = "uniform_sequential", _("Uniform (sequential)")
    LONGEST_IDLE = "longest_idle", _("Uniform (longest idle)")
    RING_ALL = "ring_all", _("Ring all")


class Fallback(models.TextChoices):
    """Where a call goes when nobody answers (a hunt group's, a menu key's target)."""

    VOICEMAIL = "voicemail", _("An extension's voicemail")
    OPERATOR = "operator", _("The operator")
    NUMBER = "number", _("Another number")
    HANGUP = "hangup", _("Hang up")


class HuntGroup(models.Model):
    """A number that rings a list of extensions by one of five algorithms."""

    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="hunt_groups", verbose_name=_("company")
    )
    site = models.ForeignKey(
        Site,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="hunt_groups",
        verbose_name=_("site"),
    )
    number = models.CharField(_("number"), max_length=6, validators=[short_number_validator])
    name = models.CharField(_("name"), max_length=120)
    algorithm = models.CharField(
        _("algorithm"), max_length=20, choices=Algorithm.choices, default=Algorithm.LINEAR
    )
    fallback = models.CharField(
        _("when nobody answers"), max_length=10, choices=Fallback.choices, default=Fallback.HANGUP
    )
    fallback_number = models.CharField(
        _("fallback number"),
        max_length=24,
        blank=True,
        validators=[outside_or_inside_validator],
        help_text=_("The extension (for its voicemail) or the number the call goes to."),
    )
    # What the algorithms remember between calls (Circular, Uniform sequential).
    last_member = models.CharField(max_length=6, blank=True, editable=False)

    class Meta:
        verbose_name = _("hunt group")
        verbose_name_plural = _("hunt groups")
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["company", "number"], name="hunt_group_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"

    def clean(self) -> None:
        if self.company_id:
            check_number_free(self.company, self.number, self)
        if self.fallback in (Fallback.VOICEMAIL, Fallback.NUMBER) and not self.fallback_number:
            raise ValidationError({"fallback_number": _("Give the number the call goes to.")})
        is_extension = Extension.objects.filter(
            company_id=self.company_id, number=self.fallback_number
        ).exists()
        if self.fallback == Fallback.VOICEMAIL and self.company_id and not is_extension:
            raise ValidationError(
                {"fallback_number": _("No extension has this number: choose one.")}
            )


class HuntMember(models.Model):
    group = models.ForeignKey(
        HuntGroup, on_delete=models.CASCADE, related_name="members", verbose_name=_("hunt group")
    )
    extension = models.ForeignKey(
        Extension, on_delete=models.CASCADE, related_name="hunt_memberships"
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    ring_time = models.PositiveSmallIntegerField(
        _("ring time (s)"),
        default=15,
        validators=[MinValueValidator(5), MaxValueValidator(120)],
    )

    class Meta:
        verbose_name = _("hunt group member")
        verbose_name_plural = _("hunt group members")
        ordering = ["group", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["group", "extension"], name="hunt_member_once")
        ]

    def __str__(self) -> str:
        return f"{self.group.number}: {self.extension.number}"

    def clean(self) -> None:
        if self.extension.company_id != self.group.company_id:
            raise ValidationError({"extension": _("The extension belongs to another company.")})


class LineIdle(models.Model):
    """When an extension's last call ended: the "longest idle" algorithm reads it (every
    node writes it), so that it survives a restart."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    number = models.CharField(max_length=6)
    idle_since = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["company", "number"], name="line_idle_once")]


class Multiselection(models.Model):
    """The auto-attendant of a number: menus by the hour of the week and by holiday."""

    company = models.ForeignKey(
        Company,
        on_delete=models.CASCADE,
        related_name="multiselections",
        verbose_name=_("company"),
    )
    number = models.CharField(_("number"), max_length=6, validators=[short_number_validator])
    name = models.CharField(_("name"), max_length=120)
    active = models.BooleanField(_("active"), default=True)
    forward_to = models.CharField(
        _("when not active, forward to"),
        max_length=24,
        blank=True,
        validators=[outside_or_inside_validator],
        help_text=_("An extension, or 0 and an outside number."),
    )
    default_menu = models.ForeignKey(
        "Menu",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("menu outside the programmed hours"),
    )

    class Meta:
        verbose_name = _("Multiselection")
        verbose_name_plural = _("Multiselections")
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "number"], name="multiselection_unique_number"
            )
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"

    def clean(self) -> None:
        if self.company_id:
            check_number_free(self.company, self.number, self)
        if not self.active and not self.forward_to:
            raise ValidationError(
                {"forward_to": _("When it is not active, calls need a number to go to.")}
            )
        if self.default_menu_id and self.default_menu.multiselection_id != self.pk:
            raise ValidationError(
                {"default_menu": _("The menu belongs to another Multiselection.")}
            )


class Menu(models.Model):
    """What a caller hears and what each key does."""

    multiselection = models.ForeignKey(
        Multiselection, on_delete=models.CASCADE, related_name="menus"
    )
    name = models.CharField(_("name"), max_length=80)
    description = models.CharField(_("description"), max_length=250, blank=True)
    announcement = models.ForeignKey(
        Announcement,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="menus",
        verbose_name=_("announcement"),
    )
    timeout = models.PositiveSmallIntegerField(
        _("seconds to wait for a key"),
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
    )
    retries = models.PositiveSmallIntegerField(
        _("replays before the timeout action"),
        default=2,
        validators=[MaxValueValidator(9)],
        help_text=_("After a timeout or an invalid key the menu plays again this many times."),
    )

    class Meta:
        verbose_name = _("menu")
        verbose_name_plural = _("menus")
        ordering = ["multiselection", "name"]
        constraints = [
            models.UniqueConstraint(fields=["multiselection", "name"], name="menu_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class KeyAction(models.TextChoices):
    REPLAY = "replay", _("Replay the menu")
    EXTENSION = "extension", _("Transfer to an extension")
    HUNT_GROUP = "hunt_group", _("Transfer to a hunt group")
    OUTSIDE = "outside", _("Transfer to an outside number")
    MENU = "menu", _("Go to a menu")
    BACK = "back", _("Back to the previous menu")
    VOICEMAIL = "voicemail", _("An extension's voicemail")
    OPERATOR = "operator", _("The operator")
    HANGUP = "hangup", _("Hang up")


KEYS = tuple("123456789*0#")
TIMEOUT, INVALID = "timeout", "invalid"


class MenuKey(models.Model):
    """One key of a menu (or what happens on a timeout / an invalid key)."""

    menu = models.ForeignKey(Menu, on_delete=models.CASCADE, related_name="keys")
    key = models.CharField(
        _("key"),
        max_length=7,
        choices=[(k, k) for k in KEYS] + [(TIMEOUT, _("Timeout")), (INVALID, _("Invalid key"))],
    )
    action = models.CharField(_("action"), max_length=12, choices=KeyAction.choices)
    number = models.CharField(
        _("number"), max_length=24, blank=True, validators=[outside_or_inside_validator]
    )
    target_menu = models.ForeignKey(
        Menu,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("menu"),
    )

    class Meta:
        verbose_name = _("menu key")
        verbose_name_plural = _("menu keys")
        constraints = [models.UniqueConstraint(fields=["menu", "key"], name="menu_key_once")]

    def __str__(self) -> str:
        return f"{self.menu}: {self.key} -> {self.action}"


class SchedulePeriod(models.Model):
    """A stretch of one weekday (15-minute steps) bound to a menu."""

    multiselection = models.ForeignKey(
        Multiselection, on_delete=models.CASCADE, related_name="periods"
    )
    weekday = models.PositiveSmallIntegerField(validators=[MaxValueValidator(6)])  # 0 = Monday
    start = models.PositiveSmallIntegerField(validators=[MaxValueValidator(1425)])  # minutes
    end = models.PositiveSmallIntegerField(validators=[MaxValueValidator(1440)])
    menu = models.ForeignKey(Menu, on_delete=models.CASCADE, related_name="periods")

    class Meta:
        ordering = ["multiselection", "weekday", "start"]


class Holiday(models.Model):
    """A special day: the whole day follows its own menu."""

    multiselection = models.ForeignKey(
        Multiselection, on_delete=models.CASCADE, related_name="holidays"
    )
    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=120, blank=True)
    menu = models.ForeignKey(
        Menu, on_delete=models.CASCADE, related_name="holidays", verbose_name=_("menu")
    )

    class Meta:
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")
        ordering = ["multiselection", "date"]
        constraints = [
            models.UniqueConstraint(fields=["multiselection", "date"], name="holiday_once")
        ]


def check_number_free(company: Company, number: str, owner: models.Model | None = None) -> None:
    """Refuse a short number already taken in `company` by an extension, a hunt group, a
    Multiselection or the operator queue (one dial plan: a number reaches one thing)."""
    if not number:
        return
    if company.operator_number == number:
        raise ValidationError({"number": _("This is the operator's number.")})
    taken = (
        (Extension, _("an extension")),
        (HuntGroup, _("a hunt group")),
        (Multiselection, _("a Multiselection")),
    )
    for model, what in taken:
        others = model.objects.filter(company=company, number=number)
        if owner is not None and isinstance(owner, model) and owner.pk:
            others = others.exclude(pk=owner.pk)
        if others.exists():
            message = _("The number %(number)s is taken by %(what)s.")
            raise ValidationError(
                {"number": ValidationError(message, params={"number": number, "what": what})}
            )
