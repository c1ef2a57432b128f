"""/me/voicemail/: the user's messages (SPEC F2) and mailbox settings (A4).

Messages are looked up inside the user's own mailbox only, so the id of another mailbox's
message is a 404 like an id that does not exist. Their files are served by `message_audio`
and `message_download`, to the owner only, never from the static root.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from pbx.media.announcement import AnnouncementError
from pbx.models import Mailbox, VoiceMessage
from selfcare import actions
from selfcare.access import me_view, render_me
from selfcare.audio import wav_response
from selfcare.forms import GreetingForm, MailboxForm, PinForm

PER_PAGE = 20


def _message_of(request: HttpRequest, pk: int) -> VoiceMessage:
    mailbox: Mailbox = request.mailbox  # type: ignore[attr-defined]
    return get_object_or_404(
        VoiceMessage.objects.select_related("mailbox__extension"), pk=pk, mailbox=mailbox
    )


def _voicemail_page(
    request: HttpRequest,
    *,
    settings_form: MailboxForm | None = None,
    pin_form: PinForm | None = None,
    greeting_form: GreetingForm | None = None,
    status: int = 200,
) -> HttpResponse:
    mailbox: Mailbox = request.mailbox  # type: ignore[attr-defined]
    page = Paginator(mailbox.messages.all(), PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "settings_form": settings_form or MailboxForm(instance=mailbox),
        "pin_form": pin_form or PinForm(),
        "greeting_form": greeting_form or GreetingForm(),
        # The feature code phones dial to listen (pbx/engine/voicemail_menu.py).
        "listen_code": getattr(settings, "CENTRALINO_VOICEMAIL_CODE", ""),
    }
    return render_me(request, "me/voicemail.html", context, status=status)


@me_view
def voicemail(request: HttpRequest) -> HttpResponse:
    return _voicemail_page(request)


def _file_name(message: VoiceMessage) -> str:
    caller = re.sub(r"[^A-Za-z0-9+]+", "-", message.caller).strip("-") or "unknown"
    when = timezone.localtime(message.received_at)
    return f"voicemail-{when:%Y%m%d-%H%M}-{caller}.wav"


@me_view
def message_audio(request: HttpRequest, pk: int) -> HttpResponse:
    message = _message_of(request, pk)
    return wav_response(request, message.path, filename=_file_name(message))


@me_view
def message_download(request: HttpRequest, pk: int) -> HttpResponse:
    message = _message_of(request, pk)
    return wav_response(request, message.path, filename=_file_name(message), attachment=True)


@me_view
@require_POST
def message_heard(request: HttpRequest, pk: int) -> HttpResponse:
    message = _message_of(request, pk)
    actions.set_heard(message, request.POST.get("heard") != "0")
    return redirect(_back(request))


@me_view
@require_POST
def message_delete(request: HttpRequest, pk: int) -> HttpResponse:
    message = _message_of(request, pk)
    actions.delete_message(message)
    when = formats.date_format(timezone.localtime(message.received_at), "SHORT_DATETIME_FORMAT")
    messages.success(
        request,
        _("Message from %(caller)s of %(when)s deleted.")
        % {"caller": message.caller_name or message.caller, "when": when},
    )
    return redirect(_back(request))


def _back(request: HttpRequest) -> str:
    """The list page the form was on."""
    page = request.POST.get("page", "")
    url = reverse("me:voicemail")
    return f"{url}?page={page}" if page.isdigit() else url


@me_view
@require_POST
def mailbox_settings(request: HttpRequest) -> HttpResponse:
    mailbox: Mailbox = request.mailbox  # type: ignore[attr-defined]
    form = MailboxForm(request.POST, instance=mailbox)
    if not form.is_valid():
        return _voicemail_page(request, settings_form=form, status=400)
    mailbox.save(update_fields=["enabled", "email_messages"])
    messages.success(request, _("Voicemail settings saved."))
    return redirect("me:voicemail")


@me_view
@require_POST
def mailbox_pin(request: HttpRequest) -> HttpResponse:
    form = PinForm(request.POST)
    if not form.is_valid():
        return _voicemail_page(request, pin_form=form, status=400)
    actions.change_pin(request.mailbox, form.cleaned_data["pin"])  # type: ignore[attr-defined]
    messages.success(request, _("New PIN saved."))
    return redirect("me:voicemail")


@me_view
def greeting(request: HttpRequest) -> HttpResponse:
    """GET: the user's own greeting, to listen to; POST: upload a new one."""
    mailbox: Mailbox = request.mailbox  # type: ignore[attr-defined]
    if request.method != "POST":
        if mailbox.greeting_path is None:
            return HttpResponse(status=404)
        return wav_response(request, mailbox.greeting_path, filename="greeting.wav")
    form = GreetingForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            actions.store_greeting(mailbox, form.audio())
        except AnnouncementError as error:
            form.add_error("file", _("File refused: %(reason)s.") % {"reason": error})
        else:
            messages.success(request, _("Your greeting is saved: callers hear it from now on."))
            return redirect("me:voicemail")
    return _voicemail_page(request, greeting_form=form, status=400)


@me_view
@require_POST
def greeting_remove(request: HttpRequest) -> HttpResponse:
    actions.remove_greeting(request.mailbox)  # type: ignore[attr-defined]
    messages.success(request, _("Your greeting is removed: callers hear the standard one."))
    return redirect("me:voicemail")


urlpatterns = [
    path("voicemail/", voicemail, name="voicemail"),
    path("voicemail/<int:pk>/audio/", message_audio, name="message-audio"),
    path("voicemail/<int:pk>/download/", message_download, name="message-download"),
    path("voicemail/<int:pk>/heard/", message_heard, name="message-heard"),
    path("voicemail/<int:pk>/delete/", message_delete, name="message-delete"),
    path("voicemail/settings/", mailbox_settings, name="mailbox-settings"),
    path("voicemail/pin/", mailbox_pin, name="mailbox-pin"),
    path("voicemail/greeting/", greeting, name="greeting"),
    path("voicemail/greeting/remove/", greeting_remove, name="greeting-remove"),
]
