"""Turn a backend's raw text stream into what the client sees: leading prefix space removed, stop strings cut."""

from __future__ import annotations

from collections.abc import Callable, Sequence


class OutputFilter:
    """Incremental post-processing of one completion.

    ``feed(delta)`` returns the text that is safe to send now and whether a stop string was reached. Text that could
    be the start of a stop string is held back until it is known not to be one (``flush`` releases it at the end),
    so the concatenation of everything sent always equals the final text, and a stop string is never sent.
    """

    def __init__(self, stop: Sequence[str] = (), strip: Callable[[str], str] | None = None) -> None:
        self.stop = [s for s in stop if s]
        self.strip = strip
        self.raw = ""
        self.sent = 0
        self.stopped = False

    def _text(self) -> str:
        return self.strip(self.raw) if self.strip else self.raw

    def feed(self, delta: str) -> tuple[str, bool]:
        if self.stopped:
            return "", True
        self.raw += delta
        text = self._text()
        # The stop string that is complete first (earliest end) wins, as when generating token by token, so the
        # result does not depend on how the text was chunked.
        found = [(i + len(s), i) for s in self.stop if (i := text.find(s, max(0, self.sent - len(s) + 1))) >= 0]
        if found:
            cut = min(found)[1]
            self.stopped = True
            out = text[self.sent : cut] if cut > self.sent else ""
            self.sent = max(self.sent, cut)
            return out, True
        hold = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(text)), hold, -1):
                if text.endswith(s[:k]):
                    hold = k
                    break
        safe = len(text) - hold
        if self.strip and not self.raw.strip(" "):  # still unknown whether a leading space will be stripped
            safe = 0
        out = text[self.sent : safe] if safe > self.sent else ""
        self.sent = max(self.sent, safe)
        return out, False

    def flush(self) -> str:
        """Everything held back, at the end of the generation (no stop string followed)."""
        if self.stopped:
            return ""
        text = self._text()
        out = text[self.sent :]
        self.sent = len(text)
        return out
