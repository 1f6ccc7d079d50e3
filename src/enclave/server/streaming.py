"""Streamed responses that stop generating the moment the client goes away.

Starlette iterates a plain generator in a worker thread and, when the client disconnects,
stops asking it for more (the response is cancelled, or its send fails), but never closes
it: a generator suspended inside the model's lock would hold the model for everyone.
Closing it when the response ends, however it ends, runs the generators' cleanup down to
the LLM, which releases the model at once.
"""

from collections.abc import Generator

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class ClosingEventStream(StreamingResponse):
    """Server-sent events from a generator that is closed when the response ends."""

    def __init__(self, events: Generator[str, None, None]):
        super().__init__(events, media_type="text/event-stream")
        self.events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # No worker thread is inside the generator now: a cancelled thread call is
            # awaited to its end before the cancellation arrives here.
            self.events.close()


def event_stream(events: Generator[str, None, None]) -> StreamingResponse:
    """Server-sent events from a generator, closed when done or when the client leaves."""
    return ClosingEventStream(events)
