"""E-mail messages (.eml): headers, the body, and the attachments Enclave can read.

An e-mail often carries its substance in an attachment ("Anbei das Protokoll"): each readable
attachment becomes sections of the message under a heading of its file name, with its own
pages. Every attachment is named in the header section, also one that cannot be read. A
forwarded message (attached as message/rfc822 or as an .eml file) is read the same way, with
its own attachments, up to MAX_NESTING levels down.
"""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

from enclave.pipeline.entities import Section
from enclave.pipeline.loaders import LOADERS, LoadError, html_sections

# A forward of a forward of a forward is read; a deeper one is named only (a crafted message
# nested thousands of levels deep must not recurse without end).
MAX_NESTING = 3


def read_email(data: bytes, path: Path) -> tuple[str, list[Section]]:
    """(subject, sections): the header fields, the body (plain text preferred), then the
    sections of each attachment whose type has a loader."""
    message = _parse(data)
    if not message.keys():
        raise LoadError("corrupt", "not an e-mail message (no headers)")
    subject, sections = _read_message(message, 0)
    return subject or path.stem, sections


def _parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _read_message(message: EmailMessage, depth: int) -> tuple[str, list[Section]]:
    """(subject, sections) of one message, each section under the subject."""
    subject = str(message.get("subject", "")).strip()
    under = (subject,) if subject else ()
    names, attached = _attachments(message, under, depth)
    fields = [(name, message[name]) for name in ("From", "To", "Cc", "Date", "Subject")]
    if names:
        fields.append(("Attachments", ", ".join(names)))
    header = "\n".join(f"{name}: {value}" for name, value in fields if value)
    sections = [Section(header, under)]
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        content = body.get_content()
        if body.get_content_subtype() == "html":
            sections += [Section(s.text, under + s.heading_path) for s in html_sections(content)[1]]
        else:
            sections.append(Section(content, under))
    return subject, sections + attached


def _attachments(
    message: EmailMessage, under: tuple[str, ...], depth: int
) -> tuple[list[str], list[Section]]:
    """The attachments' file names, and the sections of those that can be read. One that
    cannot (a broken or encrypted PDF, an image) is named only: the message is still read."""
    names: list[str] = []
    sections: list[Section] = []
    for part in message.iter_attachments():
        forwarded = _forwarded(part)
        name = Path(part.get_filename() or "").name
        found: list[Section] = []
        if forwarded is not None:
            subject = str(forwarded.get("subject", "")).strip()
            name = name or f"{subject or 'message'}.eml"
            if depth < MAX_NESTING:
                found = _read_message(forwarded, depth + 1)[1]
        elif not name:
            continue
        else:
            found = _read_attachment(part, name)
        names.append(name)
        sections += [Section(s.text, (*under, name, *s.heading_path), s.page) for s in found]
    return names, sections


def _forwarded(part: EmailMessage) -> EmailMessage | None:
    """The message a part carries: a forward as message/rfc822, or an .eml file."""
    if part.get_content_type() == "message/rfc822":
        inner = part.get_content()
        return inner if isinstance(inner, EmailMessage) else None
    if Path(part.get_filename() or "").suffix.lower() == ".eml":
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and (inner := _parse(payload)).keys():
            return inner
    return None


def _read_attachment(part: EmailMessage, name: str) -> list[Section]:
    """The sections of an attachment whose type has a loader; none where it cannot be read."""
    suffix = Path(name).suffix.lower()
    # An .eml is read as a forward (bounded by MAX_NESTING), never by the loader that calls
    # this one.
    loader = None if suffix == ".eml" else LOADERS.get(suffix)
    payload = part.get_payload(decode=True) if loader else None
    if loader is None or not isinstance(payload, bytes):
        return []
    try:
        return loader(payload, Path(name))[1]
    except LoadError:
        return []
