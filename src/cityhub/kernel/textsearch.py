"""Full-text search terms that work the same on SQLite and PostgreSQL, in Chinese and English.

Neither database segments Chinese out of the box, so domains keep their own term tables and fill them
from here: Chinese runs are cut with jieba in search mode (``公积金提取`` gives 公积, 积金, 公积金, 提取),
English is lower-cased words plus, for indexing, their prefixes from three letters (``pens`` finds pension).
A query is cut the same way, without prefixes, and looked up with one indexed ``term IN (...)``.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jieba

MAX_QUERY_TERMS = 24
MIN_PREFIX = 3
MAX_TERM_LENGTH = 64

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[0-9a-z]+")
_STOP_ZH = frozenset(
    "的 了 和 与 及 或 在 我 我的 您 你 怎么 如何 怎样 哪里 什么 要 想 需要 吗 呢 请 办 办理 去".split()  # noqa: SIM905
)
_STOP_EN = frozenset(
    "a an and are can do for how i in is me my of on or the to what when where which with".split()  # noqa: SIM905
)

_tokenizer: jieba.Tokenizer | None = None
_tokenizer_lock = threading.Lock()


def _jieba() -> jieba.Tokenizer:
    """jieba's dictionary, loaded once per process on first use (about half a second)."""
    global _tokenizer
    if _tokenizer is None:
        with _tokenizer_lock:
            if _tokenizer is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                _tokenizer = tokenizer
    return _tokenizer


def terms_of(text: str, *, prefixes: bool) -> set[str]:
    """The index terms of ``text``: jieba words of its Chinese runs, its English words (and their prefixes
    when ``prefixes``); stop words and single Latin letters left out."""
    lowered = text.lower()
    found: set[str] = set()
    for run in _CJK_RUN.findall(lowered):
        found.update(word for word in _jieba().lcut_for_search(run) if word not in _STOP_ZH)
    for word in _WORD.findall(lowered):
        if word in _STOP_EN or (len(word) == 1 and not word.isdigit()):
            continue
        found.add(word)
        if prefixes:
            found.update(word[:end] for end in range(MIN_PREFIX, len(word)))
    return {term[:MAX_TERM_LENGTH] for term in found}


def query_terms(text: str) -> list[str]:
    """The terms a query looks up (no prefixes: the index already holds them), at most MAX_QUERY_TERMS."""
    return sorted(terms_of(text, prefixes=False))[:MAX_QUERY_TERMS]
