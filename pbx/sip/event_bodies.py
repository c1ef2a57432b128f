"""The bodies of the NOTIFYs that light lamps on phones: message-summary, dialog-info and
presence.

`MessageSummary` is RFC 3842's application/simple-message-summary (the message-waiting lamp);
`DialogInfo` is RFC 4235's application/dialog-info+xml (a busy lamp field); `Presence` is RFC
3863's application/pidf+xml with RFC 4480's activities (the buddy lists of softphones such as
Linphone). Each has `parse()` and `__bytes__()`; what we write reads back as the same value.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

MESSAGE_SUMMARY_TYPE = "application/simple-message-summary"
DIALOG_INFO_TYPE = "application/dialog-info+xml"
DIALOG_INFO_NS = "urn:ietf:params:xml:ns:dialog-info"
_Q = f"{{{DIALOG_INFO_NS}}}"  # ElementTree's spelling of a name in that namespace

# RFC 4235 (its schema): the values of <state> and of the direction attribute.
DIALOG_STATES = frozenset({"trying", "proceeding", "early", "confirmed", "terminated"})
DIRECTIONS = frozenset({"initiator", "recipient"})

_COUNTS = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*(?:\(\s*(\d+)\s*/\s*(\d+)\s*\))?\s*")


class BodyError(ValueError):
    """A body that does not follow its format (a remote error: answer 400 or ignore it)."""


# --- RFC 3842: message summary ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """A mailbox's voice messages: `new` and `old` (heard), urgent ones among them."""

    waiting: bool
    account: str = ""  # the mailbox's URI ("sip:201@pbx"); "" when not named
    new: int = 0
    old: int = 0
    new_urgent: int = 0
    old_urgent: int = 0

    @classmethod
    def of_counts(cls, new: int, old: int, account: str) -> MessageSummary:
        """The summary of a mailbox with `new` unheard and `old` heard messages."""
        return cls(new > 0, account, new, old)

    def __bytes__(self) -> bytes:
        lines = [f"Messages-Waiting: {'yes' if self.waiting else 'no'}"]
        if self.account:
            lines.append(f"Message-Account: {self.account}")
        lines.append(f"Voice-Message: {self.new}/{self.old} ({self.new_urgent}/{self.old_urgent})")
        return ("\r\n".join(lines) + "\r\n").encode()

    @classmethod
    def parse(cls, body: bytes) -> MessageSummary:
        """Read a summary; lines other than the status, the account and voice are skipped.

        Raises:
            BodyError: no Messages-Waiting line, or counts that are not numbers.
        """
        fields: dict[str, str] = {}
        for line in body.decode("utf-8", "replace").splitlines():
            name, colon, value = line.partition(":")
            if colon:
                fields.setdefault(name.strip().lower(), value.strip())
        status = fields.get("messages-waiting", "").lower()
        if status not in ("yes", "no"):
            raise BodyError("no Messages-Waiting: yes|no")
        counts = [0, 0, 0, 0]
        voice = fields.get("voice-message")
        if voice is not None:
            match = _COUNTS.fullmatch(voice)
            if match is None:
                raise BodyError(f"bad Voice-Message {voice!r}")
            counts = [int(group or 0) for group in match.groups()]
        return cls(status == "yes", fields.get("message-account", ""), *counts)


# --- RFC 4235: dialog info --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Participant:
    """The <local> or <remote> side of a dialog: who (identity) and where (target)."""

    identity: str = ""
    display: str = ""
    target: str = ""
    params: tuple[tuple[str, str], ...] = ()  # <param pname pval> of the target


@dataclass(frozen=True, slots=True)
class DialogEntry:
    """One <dialog> of a dialog-info document, as the watched party sees it."""

    id: str
    state: str  # one of DIALOG_STATES
    direction: str = ""  # "initiator" (the watched party called) or "recipient"; "" unknown
    call_id: str = ""
    local_tag: str = ""  # the watched party's tag
    remote_tag: str = ""
    local: Participant | None = None
    remote: Participant | None = None

    def __post_init__(self) -> None:
        if self.state not in DIALOG_STATES:
            raise ValueError(f"dialog state {self.state!r}")
        if self.direction and self.direction not in DIRECTIONS:
            raise ValueError(f"dialog direction {self.direction!r}")


@dataclass(frozen=True, slots=True)
class DialogInfo:
    """A dialog-info document: the dialogs of `entity`, numbered by `version`."""

    entity: str
    version: int
    dialogs: tuple[DialogEntry, ...] = ()
    state: str = "full"  # "full" (every dialog) or "partial" (the changed ones)

    def __bytes__(self) -> bytes:
        root = ET.Element(
            "dialog-info",
            {
                "xmlns": DIALOG_INFO_NS,
                "version": str(self.version),
                "state": self.state,
                "entity": self.entity,
            },
        )
        for entry in self.dialogs:
            attributes = {"id": entry.id}
            for name, value in (
                ("call-id", entry.call_id),
                ("local-tag", entry.local_tag),
                ("remote-tag", entry.remote_tag),
                ("direction", entry.direction),
            ):
                if value:
                    attributes[name] = value
            dialog = ET.SubElement(root, "dialog", attributes)
            ET.SubElement(dialog, "state").text = entry.state
            # The schema's order: state, (duration, replaces, ...), local, remote.
            for name, side in (("local", entry.local), ("remote", entry.remote)):
                if side is not None:
                    _write_participant(dialog, name, side)
        text = ET.tostring(root, encoding="unicode", short_empty_elements=True)
        return f'<?xml version="1.0" encoding="UTF-8"?>\n{text}\n'.encode()

    @classmethod
    def parse(cls, body: bytes) -> DialogInfo:
        """Read a document (ours, or a test's capture: not meant for hostile input).

        Raises:
            BodyError: not XML, not dialog-info, or a required attribute missing.
        """
        try:
            root = ET.fromstring(body)
        except ET.ParseError as error:
            raise BodyError(f"not XML: {error}") from None
        if root.tag != f"{_Q}dialog-info":
            raise BodyError(f"root element {root.tag!r} is not dialog-info")
        try:
            version = int(root.attrib["version"])
            entity = root.attrib["entity"]
        except (KeyError, ValueError) as error:
            raise BodyError(f"dialog-info without a usable {error}") from None
        dialogs = []
        for element in root.findall(f"{_Q}dialog"):
            state = element.find(f"{_Q}state")
            if state is None or "id" not in element.attrib:
                raise BodyError("a dialog without id or state")
            try:
                dialogs.append(
                    DialogEntry(
                        id=element.attrib["id"],
                        state=(state.text or "").strip(),
                        direction=element.attrib.get("direction", ""),
                        call_id=element.attrib.get("call-id", ""),
                        local_tag=element.attrib.get("local-tag", ""),
                        remote_tag=element.attrib.get("remote-tag", ""),
                        local=_read_participant(element.find(f"{_Q}local")),
                        remote=_read_participant(element.find(f"{_Q}remote")),
                    )
                )
            except ValueError as error:
                raise BodyError(str(error)) from None
        return cls(entity, version, tuple(dialogs), root.attrib.get("state", "full"))


def _write_participant(dialog: ET.Element, name: str, side: Participant) -> None:
    element = ET.SubElement(dialog, name)
    if side.identity:
        identity = ET.SubElement(
            element, "identity", {"display": side.display} if side.display else {}
        )
        identity.text = side.identity
    if side.target:
        target = ET.SubElement(element, "target", {"uri": side.target})
        for pname, pval in side.params:
            ET.SubElement(target, "param", {"pname": pname, "pval": pval})


def _read_participant(element: ET.Element | None) -> Participant | None:
    if element is None:
        return None
    identity = element.find(f"{_Q}identity")
    target = element.find(f"{_Q}target")
    params: tuple[tuple[str, str], ...] = ()
    if target is not None:
        params = tuple(
            (p.attrib.get("pname", ""), p.attrib.get("pval", ""))
            for p in target.findall(f"{_Q}param")
        )
    return Participant(
        identity=(identity.text or "").strip() if identity is not None else "",
        display=identity.attrib.get("display", "") if identity is not None else "",
        target=target.attrib.get("uri", "") if target is not None else "",
        params=params,
    )


# --- RFC 3863 / RFC 4480: presence --------------------------------------------------------------

PIDF_TYPE = "application/pidf+xml"
PIDF_NS = "urn:ietf:params:xml:ns:pidf"
DATA_MODEL_NS = "urn:ietf:params:xml:ns:pidf:data-model"
RPID_NS = "urn:ietf:params:xml:ns:pidf:rpid"
ON_THE_PHONE = "on-the-phone"  # RPID's activity for a person in a call (or ringing)
# The prefixes phones expect (PIDF as the default namespace), once for the process.
for _prefix, _uri in (("", PIDF_NS), ("dm", DATA_MODEL_NS), ("rpid", RPID_NS)):
    ET.register_namespace(_prefix, _uri)


@dataclass(frozen=True, slots=True)
class Presence:
    """A PIDF document about one extension: reachable (`open`: a phone registered) or not, and
    its RPID activity ("on-the-phone", "" none), with a short note people can read."""

    entity: str
    open: bool
    activity: str = ""
    note: str = ""

    def __bytes__(self) -> bytes:
        root = ET.Element(f"{{{PIDF_NS}}}presence", {"entity": self.entity})
        tuple_ = ET.SubElement(root, f"{{{PIDF_NS}}}tuple", {"id": "phone"})
        status = ET.SubElement(tuple_, f"{{{PIDF_NS}}}status")
        ET.SubElement(status, f"{{{PIDF_NS}}}basic").text = "open" if self.open else "closed"
        ET.SubElement(tuple_, f"{{{PIDF_NS}}}contact").text = self.entity
        if self.note:
            ET.SubElement(tuple_, f"{{{PIDF_NS}}}note").text = self.note
        if self.activity:  # none: open alone reads as available ("unknown" would not)
            person = ET.SubElement(root, f"{{{DATA_MODEL_NS}}}person", {"id": "person"})
            activities = ET.SubElement(person, f"{{{RPID_NS}}}activities")
            ET.SubElement(activities, f"{{{RPID_NS}}}{self.activity}")
        text = ET.tostring(root, encoding="unicode", short_empty_elements=True)
        return f'<?xml version="1.0" encoding="UTF-8"?>\n{text}\n'.encode()

    @classmethod
    def parse(cls, body: bytes) -> Presence:
        """Read a document (ours, or a test's capture): the first tuple's basic status and
        note, the person's first activity.

        Raises:
            BodyError: not XML, not a PIDF presence document, or a tuple without a status.
        """
        try:
            root = ET.fromstring(body)
        except ET.ParseError as error:
            raise BodyError(f"not XML: {error}") from None
        if root.tag != f"{{{PIDF_NS}}}presence" or "entity" not in root.attrib:
            raise BodyError(f"root element {root.tag!r} is not a PIDF presence with an entity")
        basic = root.find(f"{{{PIDF_NS}}}tuple/{{{PIDF_NS}}}status/{{{PIDF_NS}}}basic")
        if basic is None or (basic.text or "").strip() not in ("open", "closed"):
            raise BodyError("no tuple with a basic status open or closed")
        note = root.find(f"{{{PIDF_NS}}}tuple/{{{PIDF_NS}}}note")
        activities = root.find(f"{{{DATA_MODEL_NS}}}person/{{{RPID_NS}}}activities")
        activity = ""
        if activities is not None and len(activities):
            activity = activities[0].tag.rsplit("}", 1)[-1]
            activity = "" if activity == "unknown" else activity
        return cls(
            root.attrib["entity"],
            (basic.text or "").strip() == "open",
            activity,
            (note.text or "").strip() if note is not None else "",
        )
