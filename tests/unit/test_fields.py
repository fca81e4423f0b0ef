"""Addresses are read and written by the C library (model/fields.py): exactly what ipaddress
accepts, to the same value, and the same text back."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from cloudgw.model.fields import IPv4, _address, address_text

octet = st.one_of(
    st.integers(0, 300).map(str),
    st.integers(0, 99).map(lambda n: f"0{n}"),  # leading zeros: refused by both
    st.text("0123456789xX+- ", min_size=0, max_size=4),
)
candidates = st.one_of(
    st.lists(octet, min_size=1, max_size=6).map(".".join),
    st.text("0123456789./ \n\x00", max_size=20),
    st.text(max_size=18),
)


@settings(max_examples=2000)
@given(candidates)
def test_the_fast_reading_accepts_exactly_what_ipaddress_does(text):
    try:
        expected = IPv4Address(text)
    except ValueError:
        expected = None
    try:
        fast = _address(text)
    except ValueError:  # too long to be an address: refused before any parsing, as before
        assert expected is None and len(text) > 18
        return
    if expected is None:
        assert fast == text  # handed on unchanged: pydantic's own check refuses it, with its message
    else:
        assert isinstance(fast, IPv4Address) and fast == expected


@given(st.integers(0, 2**32 - 1))
def test_written_as_ipaddress_writes_it(value):
    address = IPv4Address(value)
    assert address_text(address) == str(address)


def test_the_field_refuses_what_it_refused_before():
    field = TypeAdapter(IPv4)
    assert field.validate_python("10.0.0.1") == IPv4Address("10.0.0.1")
    assert field.dump_json(IPv4Address("10.0.0.1")) == b'"10.0.0.1"'
    for bad in ("10.0.0.01", "10.0.0.256", "10.0.0", 167772161, True, "10.0.0.1\x00"):
        with pytest.raises(ValidationError):
            field.validate_python(bad)
