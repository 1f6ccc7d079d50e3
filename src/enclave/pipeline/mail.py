"""E-mail messages (.eml): headers, the body, and the attachments Enclave can read.

An e-mail often carries its substance in an attachment ("Anbei das Protokoll"): each readable
attachment becomes sections of the message under a heading of its file name, with its own
pages. Every attachment is named in the header section, also one that cannot be read.
"""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

from enclave.pipeline.entities import Section
from enclave.pipeline.loaders import LOADERS, LoadError, html_sections


def read_email(data: bytes, path: Path) -> tuple[str, list[Section]]:
    """(subject, sections): the header fields, the body (plain text preferred), then the
    sections of each attachment whose type has a loader."""
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    if not message.keys():
        raise LoadError("corrupt", "not an e-mail message (no headers)")
    subject = str(message.get("subject", "")).strip()
    under = (subject,) if subject else ()
    names, attached = _attachments(message, under)
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
    return subject or path.stem, sections + attached


def _attachments(message: EmailMessage, under: tuple[str, ...]) -> tuple[list[str], list[Section]]:
    """The attachments' file names, and the sections of those that can be read. One that
    cannot (a broken or encrypted PDF, an image) is named only: the message is still read."""
    names: list[str] = []
    sections: list[Section] = []
    for part in message.iter_attachments():
        name = Path(part.get_filename() or "").name
        if not name:
            continue
        names.append(name)
        suffix = Path(name).suffix.lower()
        # A forwarded message is not opened in turn: one level of attachments is read.
        loader = None if suffix == ".eml" else LOADERS.get(suffix)
        payload = part.get_payload(decode=True) if loader else None
        if loader is None or not isinstance(payload, bytes):
            continue
        try:
            _, found = loader(payload, Path(name))
        except LoadError:
            continue
        sections += [Section(s.text, (*under, name, *s.heading_path), s.page) for s in found]
    return names, sections
