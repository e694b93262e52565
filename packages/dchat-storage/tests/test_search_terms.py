"""The search normaliser: the terms a text is indexed and queried by."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from dchat_storage.lowlevel import search_terms

_MAX = 64


def test_words_are_folded_split_and_distinct() -> None:
    assert search_terms("Hello, hello WORLD! don't") == ["hello", "world", "don", "t"]
    assert search_terms("\uff26\uff55\uff4c\uff4c \ufb01le Straße") == ["full", "file", "strasse"]
    assert search_terms("…  ,;") == []
    assert search_terms("x" * 100) == ["x" * _MAX]


@given(st.text(max_size=300))
def test_terms_are_nonempty_bounded_words(text: str) -> None:
    for term in search_terms(text):
        assert 0 < len(term) <= _MAX
        assert search_terms(term) == [term]  # one word, already normal


@given(st.text(max_size=300))
def test_normalising_again_changes_nothing(text: str) -> None:
    terms = search_terms(text)
    assert search_terms(" ".join(terms)) == terms
    assert len(set(terms)) == len(terms)


@given(st.text(max_size=300))
def test_unicode_normal_forms_give_the_same_terms(text: str) -> None:
    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        assert search_terms(unicodedata.normalize(form, text)) == search_terms(text)


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=300))
def test_ascii_case_never_matters(text: str) -> None:
    assert search_terms(text.upper()) == search_terms(text.lower()) == search_terms(text)
