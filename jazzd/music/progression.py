"""Chord progressions written as text: "Dm7 G7 | Cmaj7 %".  Pure; any thread.

Bars are separated by `|`; the chords of a bar share it evenly; `%` repeats the previous
chord (a bar of just `%` holds it for the whole bar).  A progression repeats to fill
as many bars as asked for.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from jazzd.errors import ChordSymbolError, ConfigError
from jazzd.music.chords import Chord, parse_chord

DEFAULT_CHANGES = "Dm7 G7 | Cmaj7 % | Dm7 G7 | Cmaj7 A7"


@dataclass(frozen=True)
class Progression:
    """Bars of (beat offset within the bar, Chord), all `beats_per_bar` long."""

    bars: tuple[tuple[tuple[float, Chord], ...], ...]
    beats_per_bar: int = 4
    text: str = ""

    @classmethod
    def from_bars(cls, bars, beats_per_bar: int = 4, text: str = "") -> Progression:
        """A progression from bars of (offset in the bar, Chord), e.g. a real solo's
        changes: chords are sorted, those at or past the bar's end dropped, repeats of
        the chord before merged, and an empty bar (or one that starts without a chord)
        holds the chord before it."""
        out, prev = [], None
        for bar in bars:
            cells = []
            for pos, chord in sorted(bar, key=lambda c: c[0]):
                if pos >= beats_per_bar - 1e-9:
                    continue
                pos = max(float(pos), 0.0)
                if not cells and pos > 0 and prev is not None:
                    cells.append((0.0, prev))
                if not cells or cells[-1][1] is not chord:
                    cells.append((0.0, chord) if not cells else (pos, chord))
                prev = chord
            if not cells:
                if prev is None:
                    raise ConfigError("a progression needs a chord in its first bar")
                cells = [(0.0, prev)]
            out.append(tuple(cells))
        if not out:
            raise ConfigError("empty chord progression: no bars")
        return cls(tuple(out), beats_per_bar, text)

    def __len__(self) -> int:
        return len(self.bars)

    def chords_in_bar(self, bar: int) -> tuple[tuple[float, Chord], ...]:
        return self.bars[bar % len(self.bars)]

    def chord_at(self, t_beats: float) -> Chord:
        """The chord sounding `t_beats` after the start (the progression loops)."""
        bar, pos = divmod(t_beats, self.beats_per_bar)
        chords = self.chords_in_bar(int(bar))
        i = bisect_right([c[0] for c in chords], pos + 1e-9)
        return chords[max(i - 1, 0)][1]


def parse_progression(text: str, beats_per_bar: int = 4) -> Progression:
    """Parse bar-lined chord text; a clear one-line error for anything unreadable."""
    if beats_per_bar < 1:
        raise ConfigError(f"beats per bar must be at least 1, got {beats_per_bar}")
    bars, prev = [], None
    for n, cell in enumerate(text.split("|"), 1):
        symbols = cell.split()
        if not symbols:
            if cell.strip() or n < len(text.split("|")):
                raise ConfigError(f"chord progression {text!r}: bar {n} is empty; write a chord or %")
            continue
        share = beats_per_bar / len(symbols)
        bar = []
        for k, symbol in enumerate(symbols):
            if symbol == "%":
                if prev is None:
                    raise ConfigError(f"chord progression {text!r}: % before any chord")
                chord = prev
            else:
                try:
                    chord = parse_chord(symbol)
                except ChordSymbolError as err:
                    raise ConfigError(f"chord progression: {err}") from None
                if chord is None:
                    raise ConfigError(f"chord progression {text!r}: NC is not playable here; name a chord")
            if not bar or bar[-1][1] is not chord:
                bar.append((k * share, chord))
            prev = chord
        bars.append(tuple(bar))
    if not bars:
        raise ConfigError("empty chord progression; write e.g. \"Dm7 G7 | Cmaj7 %\"")
    return Progression(tuple(bars), beats_per_bar, text)
