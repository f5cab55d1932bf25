"""Load shedding: a bounded amount of model work per worker, refused fast (503 + Retry-After) when full.

Without it gunicorn queues every request it accepts: at 2.5x capacity the queue grows until each answer comes after
the client gave up, the model keeps working for clients that are gone, and goodput falls to zero. Here a worker
admits at most `max_inflight` requests to model work (running plus waiting), answers the rest at once with 503
`overloaded`, and drops an admitted request that could not start within `deadline` seconds of its arrival (the
time the worker had the whole request, `roomfit.arrived_at`), before the model runs. Admission also refuses at once
a request whose expected wait (the requests ahead of it times the recent service time, over the running slots)
would take it past the deadline: a refusal then costs milliseconds instead of a wait that ends in the same 503. Uploads above
`large_pixels` also take one of `large_slots` per worker (their decode alone takes hundreds of MB), and return
their memory to the system afterwards.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from .errors import ApiError
from .memory import release_memory

log = logging.getLogger(__name__)


class Ticket:
    """One admitted request: start() waits (boundedly) for a model slot, and for a large-image slot if needed."""

    def __init__(self, gate: "WorkGate", arrived_at: float) -> None:
        self._gate = gate
        self._arrived_at = arrived_at
        self.running = False
        self.large = False
        self.started_at = 0.0

    def start(self, pixels: int) -> None:
        """Wait for the slots this upload needs, or raise a 503 when it would start too late."""
        gate = self._gate
        since = self._arrived_at
        if pixels > gate.large_pixels:
            if not gate._large.acquire(timeout=gate.large_wait):
                gate.shed("large_busy")
                raise _overloaded(f"too many large images in progress; retry in {gate.retry_after} s", gate)
            self.large = True
            since = time.monotonic()  # its wait for the model starts now; the large-image wait had its own bound
        remaining = gate.deadline - (time.monotonic() - since)
        if remaining <= 0 or not gate._running.acquire(timeout=remaining):
            gate.shed("deadline")
            raise _overloaded(f"the server is busy (waited over {gate.deadline:g} s); retry in {gate.retry_after} s",
                              gate)
        self.running = True
        self.started_at = time.monotonic()


def _overloaded(message: str, gate: "WorkGate") -> ApiError:
    return ApiError(503, "overloaded", message, {"Retry-After": str(gate.retry_after)})


class WorkGate:
    """Per-process admission control for model work (see the module docstring)."""

    def __init__(self, *, running: int, max_inflight: int, deadline: float, large_pixels: int, large_slots: int,
                 large_wait: float, retry_after: int = 1, on_shed=None) -> None:
        if running < 1 or max_inflight < running or deadline <= 0 or large_slots < 1:
            raise ValueError(f"bad shedding settings: running={running}, max_inflight={max_inflight}, "
                             f"deadline={deadline}, large_slots={large_slots}")
        self.max_inflight = max_inflight
        self.deadline = deadline
        self.large_pixels = large_pixels
        self.large_wait = large_wait
        self.retry_after = retry_after
        self.slots = running
        self._running = threading.BoundedSemaphore(running)
        self._large = threading.BoundedSemaphore(large_slots)
        self._lock = threading.Lock()
        self._inflight = 0
        self._service = 0.0  # moving average of the seconds a request holds a model slot (0: nothing measured yet)
        self._on_shed = on_shed

    @property
    def inflight(self) -> int:
        """Requests admitted and not finished."""
        return self._inflight

    def shed(self, reason: str) -> None:
        """Count a refused request."""
        log.info("shedding a request: %s (in flight %d/%d)", reason, self._inflight, self.max_inflight)
        if self._on_shed is not None:
            self._on_shed(reason)

    @contextmanager
    def admit(self, arrived_at: float) -> Iterator[Ticket]:
        """Admit a request for model work or refuse it at once (503); the ticket's slots are freed on exit."""
        waited = time.monotonic() - arrived_at
        with self._lock:
            # Requests ahead of this one, served `slots` at a time, at the recent service time each.
            expected = waited + (self._inflight + 1 - self.slots) * self._service / self.slots
            reason = "full" if self._inflight >= self.max_inflight else "late" if expected > self.deadline else None
            if reason is None:
                self._inflight += 1
        if reason is not None:
            self.shed(reason)
            raise _overloaded(f"the server is at capacity; retry in {self.retry_after} s", self)
        ticket = Ticket(self, arrived_at)
        try:
            yield ticket
        finally:
            if ticket.running:
                held = time.monotonic() - ticket.started_at
                self._running.release()
                with self._lock:
                    # Large images are the exception, not the service time of the queue: left out.
                    if not ticket.large:
                        self._service = held if self._service == 0.0 else 0.8 * self._service + 0.2 * held
            if ticket.large:
                self._large.release()
                release_memory()  # a large decode leaves hundreds of MB in malloc's free lists otherwise
            with self._lock:
                self._inflight -= 1
