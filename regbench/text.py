"""Numbers and counts in words, as every message and table writes them."""

from __future__ import annotations


def plural(n: int, word: str) -> str:
    """'1 epoch', '2 epochs'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def number(x: float, spec: str) -> str:
    """x formatted with spec, never as a negative zero ('-0.00' reads as a real decrease)."""
    text = format(x, spec)
    return format(0.0, spec) if float(text) == 0 else text



def one_line(e: BaseException) -> str:
    """An error's message on one line (its type's name when it has none)."""
    return " ".join(str(e).split()) if str(e) else type(e).__name__
