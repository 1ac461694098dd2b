"""Answers written in words: number words ("twenty-one", "five sixths") and word classes.

`word_number` reads cardinal numbers up to the millions and simple fractions ("one half",
"three quarters", "five sixths", "a third"). `word_class` maps the phrasings of one meaning
("DNE", "does not exist", "undefined") to one key. Both return None for anything else.
"""

from __future__ import annotations

import re
from fractions import Fraction

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "a": 1, "an": 1,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_ORDINALS = {
    "half": 2, "halves": 2, "third": 3, "quarter": 4, "fourth": 4, "fifth": 5, "sixth": 6,
    "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
    "twentieth": 20, "hundredth": 100, "thousandth": 1000,
}
_CLASSES = {
    "dne": "dne", "doesnotexist": "dne", "doesntexist": "dne", "nonexistent": "dne",
    "thelimitdoesnotexist": "dne", "undefined": "dne", "itdoesnotexist": "dne",
    "nosolution": "none", "nosolutions": "none", "norealsolution": "none",
    "norealsolutions": "none", "thereisnosolution": "none", "therearenosolutions": "none",
    "infinite": "infinity", "infinity": "infinity", "infinitelymany": "many",
    "infinitelymanysolutions": "many", "yes": "yes", "true": "yes", "no": "no", "false": "no",
}


def _cardinal(words: list[str]) -> int | None:
    if not words:
        return None
    total = current = 0
    seen = False
    for w in words:
        if w in _UNITS and not (w in ("a", "an") and seen):
            current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w in _SCALES:
            current = max(current, 1) * _SCALES[w]
            if _SCALES[w] >= 1000:
                total, current = total + current, 0
        elif w == "and" and seen:
            continue
        else:
            return None
        seen = True
    return total + current


def word_number(text: str) -> Fraction | None:
    """The value of a number written in words, or None."""
    t = re.sub(r"[-\s]+", " ", text.strip().lower().rstrip(".")).strip()
    if not t or len(t) > 80 or not re.fullmatch(r"(?:minus |negative )?[a-z ]+", t):
        return None
    sign = 1
    if t.startswith(("minus ", "negative ")):
        sign, t = -1, t.split(" ", 1)[1]
    words = t.split()
    last = words[-1]
    den_word = last[:-1] if last.endswith("s") and last[:-1] in _ORDINALS else last
    if den_word in _ORDINALS and len(words) >= 2:
        num = _cardinal(words[:-1])
        if num is None:
            return None
        return sign * Fraction(num, _ORDINALS[den_word])
    if len(words) == 1 and words[0] in ("a", "an"):
        return None
    value = _cardinal(words)
    return None if value is None else sign * Fraction(value)


def word_class(text: str) -> str | None:
    """A key shared by the phrasings of one word answer ("DNE" and "does not exist")."""
    key = re.sub(r"[^a-z]", "", text.lower())
    return _CLASSES.get(key)
