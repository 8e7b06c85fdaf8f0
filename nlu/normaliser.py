"""Input normalisation for users' Chinese, before tokenization.

Pure functions, no Rasa import: `nlu.components.TextNormaliser` wraps them for the
NLU pipeline, and the tests call them directly.

What it does, in order:
1. drops control and zero-width characters and lone surrogates;
2. full-width -> half-width (NFKC);
3. pinyin of domain terms -> Chinese (``jiebei`` -> 借呗), derived with pypinyin;
4. stray spaces between Chinese characters and repeated punctuation;
5. traditional -> simplified (OpenCC ``tw2sp``), then the common misspellings of
   the products (借贝 -> 借呗, 花贝 -> 花呗, 芝麻份 -> 芝麻分).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Dict, Pattern, Tuple

# Domain terms whose pinyin users type instead of the characters.
PINYIN_TERMS: Tuple[str, ...] = (
    "借呗",
    "花呗",
    "芝麻分",
    "芝麻信用",
    "网商贷",
    "余额宝",
    "支付宝",
    "征信",
)

# Misspellings and variants that always mean the product (checked against
# ordinary words: none of these is a common word on its own).
VARIANTS: Dict[str, str] = {
    "借贝": "借呗",
    "借唄": "借呗",
    "借被": "借呗",
    "借倍": "借呗",
    "花贝": "花呗",
    "花唄": "花呗",
    "芝麻份": "芝麻分",
    "芝麻粉": "芝麻分",
    "网上贷": "网商贷",
    "帐户": "账户",
    "帐号": "账号",
}

# "借吧" is also ordinary speech ("那就借吧" = "let's borrow then"), so it is read
# as the product only next to words that make that clear.
_JIEBA_AS_PRODUCT = re.compile(
    r"(?:(?<=[的个蚂蚁宝通到了没有把开关])借吧)|(?:借吧(?=[额度入口怎咋为啥没不还里上的利逾提功账用借开关被呢吗是能可]))"
)

_ZERO_WIDTH = re.compile("[\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_WHITESPACE = re.compile(r"\s+")
_REPEATED_QUESTION = re.compile(r"[?？][?？!！]*")
_REPEATED_BANG = re.compile(r"[!！]+")
_REPEATED_OTHER = re.compile(r"([.。,，~～、;；…])\1+")


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc" and char not in "\n\t"


@functools.lru_cache(maxsize=1)
def _converter():  # type: ignore[no-untyped-def]
    import opencc  # imported lazily: loading its dictionaries takes a moment

    return opencc.OpenCC("tw2sp")


@functools.lru_cache(maxsize=1)
def _pinyin_patterns() -> Tuple[Tuple[Pattern[str], str], ...]:
    from pypinyin import lazy_pinyin

    patterns = []
    # Longest first so 芝麻信用 wins over a shorter overlapping term.
    for term in sorted(PINYIN_TERMS, key=len, reverse=True):
        syllables = lazy_pinyin(term)
        body = r"\s*".join(re.escape(s) for s in syllables)
        patterns.append(
            (re.compile(rf"(?<![a-z]){body}(?![a-z])", re.IGNORECASE), term)
        )
    return tuple(patterns)


def strip_invisible(text: str) -> str:
    """Remove lone surrogates, zero-width and control characters."""
    text = _SURROGATES.sub("", text)
    text = _ZERO_WIDTH.sub("", text)
    return "".join(" " if c in "\n\t" else c for c in text if not _is_control(c))


def to_simplified(text: str) -> str:
    """Traditional -> simplified Chinese, then fix the domain's own spellings."""
    text = _converter().convert(text)
    for wrong, right in VARIANTS.items():
        text = text.replace(wrong, right)
    return _JIEBA_AS_PRODUCT.sub("借呗", text)


def pinyin_to_terms(text: str) -> str:
    """Replace typed pinyin of domain terms (``jiebei``, ``Jie Bei``) by the term."""
    if not re.search("[A-Za-z]", text):
        return text
    for pattern, term in _pinyin_patterns():
        text = pattern.sub(term, text)
    return text


def tidy_spacing_and_punctuation(text: str) -> str:
    """Join Chinese split by stray spaces; collapse repeated punctuation."""
    text = _SPACE_BETWEEN_CJK.sub("", text)
    text = _WHITESPACE.sub(" ", text).strip()
    text = _REPEATED_QUESTION.sub("?", text)
    text = _REPEATED_BANG.sub("!", text)
    return _REPEATED_OTHER.sub(r"\1", text)


def normalise(text: str) -> str:
    """Return the text as the NLU pipeline should see it."""
    text = strip_invisible(text)
    text = unicodedata.normalize("NFKC", text)
    text = pinyin_to_terms(text)
    # Spacing first, so a misspelling split by a space ("借 贝") is joined
    # before the variant table sees it.
    text = tidy_spacing_and_punctuation(text)
    return to_simplified(text)
