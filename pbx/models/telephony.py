"""The company's telephony configuration: sites, extensions, devices, trunks and DIDs."""

from __future__ import annotations

import secrets
import string
from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from pbx.sip.digest import ha1

short_number_validator = RegexValidator(
    r"^[1-9][0-9]{1,5}$",
    _("A short number has 2 to 6 digits and does not start with 0 (0 selects the trunk)."),
)
operator_number_validator = RegexValidator(
    r"^[1-9][0-9]{0,5}$",
    _("The operator's number has 1 to 6 digits and does not start with 0."),
)
did_validator = RegexValidator(r"^\+?[0-9]{3,20}$", _("A company number is 3 to 20 digits."))
sip_username_validator = RegexValidator(
    r"^[A-Za-z0-9_.\-]{2,64}$", _("Letters, digits, '.', '_' and '-' only (2 to 64).")
)
SECRET_ALPHABET = string.ascii_letters + string.digits


def generate_secret(length: int = 20) -> str:
    """Return a random SIP secret (letters and digits, 20 by default, never under 16)."""
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(max(length, 16)))


def _validate_time_zone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(_("Unknown time zone: %(tz)s"), params={"tz": value})


class Company(models.Model):
    name = models.CharField(_("name"), max_length=120, unique=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Rome", validators=[_validate_time_zone]
    )
    operator_number = models.CharField(
        _("operator number"),
        max_length=6,
        default="9",
        blank=True,
        validators=[operator_number_validator],
        help_text=_(
            "Internal phones dial it to reach the operator queue of the console; empty: none."
        ),
    )

    class Meta:
        verbose_name = _("company")
        verbose_name_plural = _("companies")

    def __str__(self) -> str:
        return self.name


class Site(models.Model):
    """A location of the company ("sede")."""

    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="sites", verbose_name=_("company")
    )
    name = models.CharField(_("name"), max_length=120)
    address = models.CharField(_("address"), max_length=250, blank=True)

    class Meta:
        verbose_name = _("site")
        verbose_name_plural = _("sites")
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="site_unique_per_company")
        ]

    def __str__(self) -> str:
        return self.name


class RingMode(models.TextChoices):
    ALL = "all", _("All devices at once")
    IN_ORDER = "in_order", _("Devices in order")


class Extension(models.Model):
    """A short number with its person, ring mode and forwarding ("interno")."""

    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="extensions", verbose_name=_("company")
    )
    site = models.ForeignKey(
        Site,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="extensions",
        verbose_name=_("site"),
    )
    number = models.CharField(_("short number"), max_length=6, validators=[short_number_validator])
    display_name = models.CharField(_("name"), max_length=120)
    email = models.EmailField(_("email"), blank=True)
    mobile = models.CharField(_("mobile"), max_length=30, blank=True)
    do_not_disturb = models.BooleanField(_("do not disturb"), default=False)
    forward_always = models.CharField(_("forward always to"), max_length=32, blank=True)
    forward_busy = models.CharField(_("forward when busy to"), max_length=32, blank=True)
    forward_no_answer = models.CharField(_("forward on no answer to"), max_length=32, blank=True)
    no_answer_timeout = models.PositiveSmallIntegerField(_("no-answer timeout (s)"), default=20)
    ring_mode = models.CharField(
        _("ring mode"), max_length=10, choices=RingMode.choices, default=RingMode.ALL
    )
    ring_outside = models.CharField(
        _("also ring an outside number"),
        max_length=24,
        blank=True,
        help_text=_("0 and the number (a mobile), rung with the devices after a delay."),
    )
    ring_outside_delay = models.PositiveSmallIntegerField(
        _("after (s)"), default=10, help_text=_("Seconds of ringing before it rings too.")
    )
    enabled = models.BooleanField(
        _("enabled"), default=True, help_text=_("A disabled extension neither rings nor calls.")
    )

    class Meta:
        verbose_name = _("extension")
        verbose_name_plural = _("extensions")
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["company", "number"], name="extension_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.display_name}"

    def clean(self) -> None:
        for field in ("forward_always", "forward_busy", "forward_no_answer"):
            target = getattr(self, field)
            if target and not target.isdigit():
                raise ValidationError({field: _("A forwarding target is a number.")})
            if target and target == self.number:
                raise ValidationError({field: _("An extension cannot forward to itself.")})
        if self.site_id and self.site.company_id != self.company_id:
            raise ValidationError({"site": _("The site belongs to another company.")})
        if self.ring_outside and not self.ring_outside.isdigit():
            raise ValidationError({"ring_outside": _("An outside number is digits only.")})
        if self.company_id:
            from pbx.models.reception import check_number_free

            check_number_free(self.company, self.number, self)


class Role(models.TextChoices):
    """What a web user reaches: the administrator portal, the console, or their own extension."""

    ADMINISTRATOR = "administrator", _("Administrator")
    OPERATOR = "operator", _("Operator")
    END_USER = "end_user", _("End user")


class Membership(models.Model):
    """A web user's company and role; an end user (or an operator) has their extension.

    Every check of who may see or do what starts here (the console's socket, the API,
    pbx/control.py), never from what a page shows.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="membership",
        verbose_name=_("user"),
    )
    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="members", verbose_name=_("company")
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    extension = models.ForeignKey(
        Extension,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="members",
        verbose_name=_("extension"),
    )
    # The console's "Locale" tab shows every extension live but these (SPEC B8): each
    # operator switches monitoring off for their own view.
    unmonitored = models.ManyToManyField(
        Extension, blank=True, related_name="+", verbose_name=_("extensions not monitored")
    )
    # The first login of every user asks for a new password (SPEC E1): whoever set the first
    # one (an administrator, the demo) knows it.
    must_change_password = models.BooleanField(_("must change password"), default=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}, {self.company})"

    def clean(self) -> None:
        if self.extension_id and self.extension.company_id != self.company_id:
            raise ValidationError({"extension": _("The extension belongs to another company.")})

    @property
    def runs_the_console(self) -> bool:
        """Operators work in the console; administrators may look at it too."""
        return self.role in (Role.OPERATOR, Role.ADMINISTRATOR)


class Device(models.Model):
    """A phone or softphone of an extension, with its SIP credentials.

    The secret is kept only as digest HA1 values (MD5 and SHA-256 for the realm): enough to
    answer a phone's digest response, never enough to show the secret again.
    """

    extension = models.ForeignKey(
        Extension, on_delete=models.CASCADE, related_name="devices", verbose_name=_("extension")
    )
    label = models.CharField(_("label"), max_length=60, blank=True)
    username = models.CharField(
        _("SIP username"), max_length=64, unique=True, validators=[sip_username_validator]
    )
    realm = models.CharField(max_length=64, editable=False)
    ha1_md5 = models.CharField(max_length=32, editable=False)
    ha1_sha256 = models.CharField(max_length=64, editable=False)
    position = models.PositiveSmallIntegerField(
        _("position"), default=0, help_text=_("Order when the extension rings devices in order.")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("device")
        verbose_name_plural = _("devices")
        ordering = ["extension", "position", "id"]

    def __str__(self) -> str:
        return self.username

    def set_secret(self, secret: str) -> None:
        """Store the HA1 values of `secret` for the configured realm."""
        if len(secret) < 8:
            raise ValidationError(_("A SIP secret has at least 8 characters."))
        self.realm = settings.CENTRALINO_REALM
        self.ha1_md5 = ha1(self.username, self.realm, secret, "MD5")
        self.ha1_sha256 = ha1(self.username, self.realm, secret, "SHA-256")

    def rotate_secret(self) -> str:
        """Give the device a new random secret, save it and return it (shown once)."""
        secret = generate_secret()
        self.set_secret(secret)
        self.save(update_fields=["realm", "ha1_md5", "ha1_sha256"])
        return secret


class Transport(models.TextChoices):
    UDP = "udp", "UDP"
    TCP = "tcp", "TCP"


class Trunk(models.Model):
    """A SIP trunk to a carrier: how calls leave and how the company's numbers arrive."""

    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="trunks", verbose_name=_("company")
    )
    name = models.CharField(_("name"), max_length=60)
    host = models.CharField(_("carrier host"), max_length=253)
    port = models.PositiveIntegerField(_("port"), default=5060)
    transport = models.CharField(
        _("transport"), max_length=3, choices=Transport.choices, default=Transport.UDP
    )
    username = models.CharField(_("username"), max_length=64, blank=True)
    # The carrier's challenges need the secret itself (we are the client): kept, never listed.
    password = models.CharField(_("password"), max_length=128, blank=True)
    register = models.BooleanField(_("register to the carrier"), default=True)
    register_expires = models.PositiveIntegerField(_("registration interval (s)"), default=600)
    caller_id = models.CharField(
        _("outgoing caller ID"),
        max_length=32,
        blank=True,
        help_text=_("The company number presented on outgoing calls."),
    )
    outbound_prefix = models.CharField(
        _("outbound prefix"),
        max_length=4,
        default="0",
        help_text=_("Dialled before an outside number; stripped before the call leaves."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        verbose_name = _("SIP trunk")
        verbose_name_plural = _("SIP trunks")

    def __str__(self) -> str:
        return self.name


class DidTarget(models.TextChoices):
    """Where a company number goes."""

    EXTENSION = "extension", _("Extension")
    HUNT_GROUP = "hunt_group", _("Hunt group")
    MULTISELECTION = "multiselection", _("Multiselection")
    OPERATOR = "operator", _("Operator queue")


class Did(models.Model):
    """A company number brought by a trunk, and where its calls are routed."""

    trunk = models.ForeignKey(
        Trunk, on_delete=models.CASCADE, related_name="dids", verbose_name=_("SIP trunk")
    )
    number = models.CharField(
        _("company number"), max_length=21, unique=True, validators=[did_validator]
    )
    target_kind = models.CharField(
        _("routed to"), max_length=20, choices=DidTarget.choices, default=DidTarget.EXTENSION
    )
    extension = models.ForeignKey(
        Extension,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="dids",
        verbose_name=_("extension"),
    )
    hunt_group = models.ForeignKey(
        "HuntGroup",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="dids",
        verbose_name=_("hunt group"),
    )
    multiselection = models.ForeignKey(
        "Multiselection",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="dids",
        verbose_name=_("Multiselection"),
    )

    class Meta:
        verbose_name = _("company number (DID)")
        verbose_name_plural = _("company numbers (DID)")

    def __str__(self) -> str:
        return self.number

    def clean(self) -> None:
        if self.target_kind == DidTarget.EXTENSION and self.extension_id is None:
            raise ValidationError({"extension": _("Choose the extension this number rings.")})
        if self.target_kind == DidTarget.HUNT_GROUP and self.hunt_group_id is None:
            raise ValidationError({"hunt_group": _("Choose the hunt group this number rings.")})
        if self.target_kind == DidTarget.MULTISELECTION and self.multiselection_id is None:
            raise ValidationError(
                {"multiselection": _("Choose the Multiselection that answers this number.")}
            )
        company_id = self.trunk.company_id
        for target in (self.hunt_group, self.multiselection):
            if target is not None and target.company_id != company_id:
                raise ValidationError(_("The target belongs to another company."))
        if self.target_kind == DidTarget.OPERATOR and not self.trunk.company.operator_number:
            raise ValidationError(
                {"target_kind": _("The company has no operator number: give it one first.")}
            )
        if self.extension_id and self.extension.company_id != self.trunk.company_id:
            raise ValidationError({"extension": _("The extension belongs to another company.")})


class ConfigStamp(models.Model):
    """One row whose counter moves on every configuration change, in any process.

    The engine compares it once per call set-up or registration and drops its cache when it
    moved: a change made by the admin, the CLI or another node takes effect on the next request.
    """

    version = models.PositiveBigIntegerField(default=0)

    @classmethod
    def bump(cls) -> None:
        updated = cls.objects.filter(pk=1).update(version=models.F("version") + 1)
        if not updated:
            cls.objects.get_or_create(pk=1, defaults={"version": 1})

    @classmethod
    def current(cls) -> int:
        return cls.objects.filter(pk=1).values_list("version", flat=True).first() or 0


class Registration(models.Model):
    """Where a device registered, kept so that a restarted engine still reaches it.

    Written by the engine (pbx/bindings.py) on every REGISTER; read back once at start-up.
    """

    node = models.CharField(max_length=64)
    username = models.CharField(max_length=64)
    contact = models.CharField(max_length=512)
    source_host = models.CharField(max_length=64)
    source_port = models.PositiveIntegerField()
    transport = models.CharField(max_length=3)
    expires_at = models.DateTimeField()
    call_id = models.CharField(max_length=256)
    cseq = models.PositiveIntegerField()

    class Meta:
        verbose_name = _("registration")
        verbose_name_plural = _("registrations")
        indexes = [models.Index(fields=["node", "username"])]

    def __str__(self) -> str:
        return f"{self.username} at {self.contact}"


class NodeHeartbeat(models.Model):
    """The last sign of life of each telephony node's engine, written every few seconds.

    /healthz and the home page read it (no question to the engine, nothing left in Redis); a
    restarted engine reads when its predecessor was last alive (crash recovery).
    """

    node = models.CharField(max_length=64, unique=True)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)  # a clean stop; None while it runs
    sip_port = models.PositiveIntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)
    registered_devices = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("telephony node")
        verbose_name_plural = _("telephony nodes")
        ordering = ["node"]

    def __str__(self) -> str:
        return self.node
