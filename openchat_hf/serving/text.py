"""Turn a backend's raw text stream into what the client sees: leading prefix space removed, stop strings cut.

Stop strings are matched with one Knuth-Morris-Pratt automaton each, fed every character once: the cost is linear
in the output length times the number of stops, whatever their length or how the text is chunked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

MAX_STOP_CHARS = 1000  # the longest accepted stop string (the request schema enforces it)


class _StopMatcher:
    """KMP automaton of one stop string; ``state`` = length of the longest prefix of it that ends the text so far."""

    __slots__ = ("stop", "fail", "state")

    def __init__(self, stop: str) -> None:
        self.stop = stop
        fail = [0] * len(stop)
        k = 0
        for i in range(1, len(stop)):
            while k and stop[i] != stop[k]:
                k = fail[k - 1]
            if stop[i] == stop[k]:
                k += 1
            fail[i] = k
        self.fail = fail
        self.state = 0

    def feed(self, char: str) -> bool:
        """Advance by one character; ``True`` when the whole stop string now ends the text."""
        stop, k = self.stop, self.state
        if k == len(stop):
            k = self.fail[k - 1]
        while k and char != stop[k]:
            k = self.fail[k - 1]
        if char == stop[k]:
            k += 1
        self.state = k
        return k == len(stop)


class OutputFilter:
    """Incremental post-processing of one completion.

    ``feed(delta)`` returns the text that is safe to send now and whether a stop string was reached. Text that could
    be the start of a stop string is held back until it is known not to be one (``flush`` releases it at the end),
    so the concatenation of everything sent always equals the final text, and a stop string is never sent. The stop
    string that is complete first (earliest end; at the same end the longest) wins, as when generating token by
    token, so the result does not depend on how the text was chunked.
    """

    def __init__(self, stop: Sequence[str] = (), strip: Callable[[str], str] | None = None) -> None:
        self.matchers = [_StopMatcher(s) for s in dict.fromkeys(s for s in stop if s)]
        self.strip = strip
        self.pending = ""  # raw text while it is unknown whether ``strip`` removes something from it
        self.held = ""  # accepted text not sent yet: a possible start of a stop string
        self.stopped = False

    def _accept(self, delta: str) -> tuple[str, bool]:
        """Run ``delta`` through the stop matchers; return what may be sent now."""
        if not self.matchers:
            return delta, False
        for offset, char in enumerate(delta):
            ends = [m for m in self.matchers if m.feed(char)]
            if ends:  # the held text always covers the stop string's start (its prefix was a held suffix)
                upto = self.held + delta[: offset + 1]
                cut = len(upto) - max(len(m.stop) for m in ends)
                self.stopped, self.held = True, ""
                return upto[: max(cut, 0)], True
        self.held += delta
        keep = max(m.state for m in self.matchers)
        if keep >= len(self.held):
            return "", False
        out, self.held = self.held[: len(self.held) - keep], self.held[len(self.held) - keep :]
        return out, False

    def feed(self, delta: str) -> tuple[str, bool]:
        if self.stopped:
            return "", True
        if self.strip is not None:
            self.pending += delta
            if not self.pending.strip(" "):  # still unknown whether a leading space will be stripped
                return "", False
            delta, self.strip = self.strip(self.pending), None
            self.pending = ""
        return self._accept(delta)

    def flush(self) -> str:
        """Everything held back, at the end of the generation (no stop string followed)."""
        out = ""
        if self.strip is not None and self.pending and not self.stopped:
            out, _ = self._accept(self.strip(self.pending))
        self.strip, self.pending = None, ""
        if self.stopped:
            return out
        out, self.held = out + self.held, ""
        return out
