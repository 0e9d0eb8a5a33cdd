"""background/webhook_dispatcher.py follow_from: the loop every log follower runs."""

from __future__ import annotations

import threading

from background.webhook_dispatcher import follow_from


class FlakyPosition:
    """Its making fails the first time, as it does while the database is down at start."""

    made = 0

    def __init__(self, services) -> None:
        FlakyPosition.made += 1
        if FlakyPosition.made == 1:
            raise ConnectionError("database unavailable")


def test_a_position_that_cannot_be_made_at_first_is_made_on_a_later_round():
    stop, steps = threading.Event(), []

    def step(position) -> None:
        steps.append(position)
        stop.set()

    worker = threading.Thread(target=follow_from, args=(FlakyPosition, step, None, stop, 0.01, "the test"))
    worker.start()
    worker.join(5)
    assert not worker.is_alive()
    assert FlakyPosition.made == 2 and len(steps) == 1 and isinstance(steps[0], FlakyPosition)
