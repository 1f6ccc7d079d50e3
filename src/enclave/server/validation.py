"""Text from the network, checked at the edge: no NUL characters, valid Unicode, a length.

PostgreSQL cannot store NUL, and a lone surrogate cannot be encoded to UTF-8: both would
otherwise fail deep inside a request as a server error.
"""

from typing import Annotated

from pydantic import AfterValidator, Field

MAX_QUESTION_CHARS = 4000


def clean_text(value: str) -> str:
    """The value if it is storable text; a validation error (422) naming the problem if not."""
    if "\x00" in value:
        raise ValueError("NUL characters are not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("not valid Unicode text (lone surrogate)") from exc
    return value


def question_text(value: str) -> str:
    """Storable text with something to ask, within the limit (pydantic's own length errors
    speak of "items": "Value should have at least 1 item after validation")."""
    value = clean_text(value)
    if not value.strip():
        raise ValueError("must not be empty")
    if len(value) > MAX_QUESTION_CHARS:
        raise ValueError(f"at most {MAX_QUESTION_CHARS} characters, not {len(value)}")
    return value


Text = Annotated[str, AfterValidator(clean_text)]
Name = Annotated[str, AfterValidator(clean_text), Field(max_length=200)]
# The Field limits document the schema; question_text refuses first, in words.
Question = Annotated[
    str, AfterValidator(question_text), Field(min_length=1, max_length=MAX_QUESTION_CHARS)
]
