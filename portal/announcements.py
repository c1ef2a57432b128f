"""Announcements: the recordings a Multiselection's menus play (SPEC E5).

Three ways in, one way to store: an uploaded WAV, a recording made in the browser
(static/js/recorder.js posts a 16 kHz WAV) and speech synthesis all go through
`store_announcement`, which checks the bytes with `check_announcement` and writes the file
before the row, so a refused file leaves nothing behind. Files live under
CENTRALINO_ANNOUNCEMENTS_DIR, outside the static root: only `announcement_audio` serves them,
to the company's administrators.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import messages
from django.db import transaction
from django.db.models import ProtectedError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from pbx.announcement_store import MAX_BYTES, NameTaken, store_announcement
from pbx.media import speech
from pbx.media.announcement import AnnouncementError
from pbx.models import Announcement, AnnouncementSource, Company
from portal.access import admin_view

ENCODINGS = {
    "pcm16k": gettext_lazy("16-bit PCM, 16 kHz"),
    "ulaw8k": gettext_lazy("G.711 µ-law, 8 kHz"),
    "alaw8k": gettext_lazy("G.711 A-law, 8 kHz"),
}


def delete_announcement(announcement: Announcement) -> None:
    """Delete the row, then (once committed) its file."""
    file_path = announcement.path
    with transaction.atomic():
        announcement.delete()
        transaction.on_commit(lambda: file_path.unlink(missing_ok=True))


# --- forms ----------------------------------------------------------------------------------


class _NamedForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=120)

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.company = company

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if self.company.announcements.filter(name=name).exists():
            raise forms.ValidationError(_("Another announcement is already called “%s”.") % name)
        return name

    def refuse(self, error: Exception) -> None:
        """Report why the audio was not kept, on the form."""
        if isinstance(error, NameTaken):
            self.add_error("name", _("Another announcement is already called “%s”.") % error)
        elif isinstance(error, AnnouncementError):
            self.add_error(None, _("File refused: %(reason)s.") % {"reason": error})
        else:
            self.add_error(None, _("The speech synthesis failed: %(reason)s.") % {"reason": error})


class UploadForm(_NamedForm):
    """A WAV file from the administrator's computer (or the browser's recorder)."""

    prefix = "upload"
    file = forms.FileField(
        label=gettext_lazy("WAV file"),
        help_text=gettext_lazy(
            "16-bit PCM mono 16 kHz, or G.711 µ-law / A-law mono 8 kHz; at most 10 MB."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".wav,audio/wav,audio/x-wav"}),
    )

    def audio(self) -> bytes:
        """The file's bytes, at most one more than accepted (enough to say it is too large)."""
        upload = self.cleaned_data["file"]
        upload.seek(0)
        return upload.read(MAX_BYTES + 1)


class SpeechForm(_NamedForm):
    """A text that speech synthesis turns into an announcement."""

    prefix = "speech"
    text = forms.CharField(
        label=gettext_lazy("Text to say"),
        max_length=speech.MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    language = forms.ChoiceField(
        label=gettext_lazy("Language"), choices=[("it", "Italiano"), ("en", "English")]
    )


# --- views ----------------------------------------------------------------------------------


def _announcement_for(request: HttpRequest, pk: int) -> Announcement:
    return get_object_or_404(Announcement, pk=pk, company=request.company)  # type: ignore[attr-defined]


def _list_page(
    request: HttpRequest,
    upload: UploadForm | None = None,
    spoken: SpeechForm | None = None,
    status: int = 200,
) -> HttpResponse:
    company = request.company  # type: ignore[attr-defined]
    announcements = company.announcements.prefetch_related("menus__multiselection")
    context = {
        "announcements": announcements,
        "encodings": ENCODINGS,
        "upload_form": upload or UploadForm(company=company),
        "speech_form": spoken or SpeechForm(company=company),
        "record_form": UploadForm(company=company, prefix="record"),
        "speech_available": speech.available(),
        "recorder_config": {
            "url": reverse("manage:announcement-record"),
            "maxSeconds": 600,
            "labels": _recorder_labels(),
        },
    }
    return render(request, "manage/announcements/list.html", context, status=status)


def _recorder_labels() -> dict[str, str]:
    return {
        "recording": _("Recording…"),
        "stopped": _("Recorded: listen to it, then save it or record again."),
        "saving": _("Saving…"),
        "noName": _("Give the announcement a name first."),
        "noMicrophone": _(
            "This browser cannot record here: the microphone needs HTTPS (or localhost)."
        ),
        "denied": _("The microphone could not be opened: %s"),
        "failed": _("The recording was not saved: %s"),
        "leave": _("The recording is not saved yet."),
    }


@admin_view
def announcement_list(request: HttpRequest) -> HttpResponse:
    return _list_page(request)


@admin_view
@require_POST
def announcement_upload(request: HttpRequest) -> HttpResponse:
    company = request.company  # type: ignore[attr-defined]
    form = UploadForm(request.POST, request.FILES, company=company)
    if form.is_valid():
        try:
            stored = store_announcement(
                company, form.cleaned_data["name"], form.audio(), AnnouncementSource.UPLOAD
            )
        except (AnnouncementError, NameTaken) as error:
            form.refuse(error)
        else:
            messages.success(request, _("Announcement “%s” added.") % stored.name)
            return redirect("manage:announcements")
    return _list_page(request, upload=form, status=400)


@admin_view
@require_POST
def announcement_record(request: HttpRequest) -> JsonResponse:
    """The browser's recording (multipart: name, file): JSON, since fetch() posts it."""
    company = request.company  # type: ignore[attr-defined]
    form = UploadForm(request.POST, request.FILES, company=company, prefix="record")
    if form.is_valid():
        try:
            stored = store_announcement(
                company, form.cleaned_data["name"], form.audio(), AnnouncementSource.BROWSER
            )
        except (AnnouncementError, NameTaken) as error:
            form.refuse(error)
        else:
            messages.success(request, _("Announcement “%s” added.") % stored.name)
            return JsonResponse({"redirect": reverse("manage:announcements")}, status=201)
    errors = [str(message) for messages_ in form.errors.values() for message in messages_]
    return JsonResponse({"errors": errors}, status=400)


@admin_view
@require_POST
def announcement_speech(request: HttpRequest) -> HttpResponse:
    company = request.company  # type: ignore[attr-defined]
    form = SpeechForm(request.POST, company=company)
    if form.is_valid():
        data = form.cleaned_data
        try:
            audio = speech.synthesise(data["text"], data["language"])
            stored = store_announcement(
                company, data["name"], audio, AnnouncementSource.SPEECH, text=data["text"]
            )
        except (speech.SpeechError, ValueError) as error:  # AnnouncementError, NameTaken too
            form.refuse(error)
        else:
            messages.success(request, _("Announcement “%s” added.") % stored.name)
            return redirect("manage:announcements")
    return _list_page(request, spoken=form, status=400)


@admin_view
def announcement_delete(request: HttpRequest, pk: int) -> HttpResponse:
    announcement = _announcement_for(request, pk)
    users = announcement.used_by()
    if request.method == "POST":
        try:
            if users:
                raise ProtectedError("in use", set(users))
            delete_announcement(announcement)
        except ProtectedError:  # a menu may have taken it up since the page was shown
            messages.error(request, in_use_message(announcement, announcement.used_by()))
        else:
            messages.success(request, _("Announcement “%s” deleted.") % announcement.name)
        return redirect("manage:announcements")
    context = {
        "thing": _("the announcement “%s”") % announcement.name,
        "blockers": [in_use_message(announcement, users)] if users else [],
        "cancel_url": reverse("manage:announcements"),
    }
    return render(request, "manage/attendant/confirm_delete.html", context)


def in_use_message(announcement: Announcement, menus: list[Any]) -> str:
    """Why an announcement cannot be deleted: the menus that play it."""
    names = ", ".join(f"“{menu.name}” ({menu.multiselection})" for menu in menus)
    return _("“%(name)s” cannot be deleted: the menus %(menus)s play it.") % {
        "name": announcement.name,
        "menus": names,
    }


@admin_view
def announcement_audio(request: HttpRequest, pk: int) -> FileResponse:
    """The stored WAV, to the company's administrators only."""
    announcement = _announcement_for(request, pk)
    try:
        audio = announcement.path.open("rb")
    except FileNotFoundError:
        raise Http404("The announcement's file is missing.") from None
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", announcement.name).strip("-") or "announcement"
    response = FileResponse(audio, content_type="audio/wav", filename=f"{slug}.wav")
    response["Cache-Control"] = "private, max-age=3600"  # a file is never rewritten
    return response


urlpatterns = [
    path("announcements/", announcement_list, name="announcements"),
    path("announcements/upload/", announcement_upload, name="announcement-upload"),
    path("announcements/record/", announcement_record, name="announcement-record"),
    path("announcements/speech/", announcement_speech, name="announcement-speech"),
    path("announcements/<int:pk>/delete/", announcement_delete, name="announcement-delete"),
    path("announcements/<int:pk>/audio/", announcement_audio, name="announcement-audio"),
]
