"""Derived ids are uuid5 of the namespace and "kind:part:part", whichever way computed."""

from uuid import UUID, uuid5

from hypothesis import given
from hypothesis import strategies as st

from domain.values import REELPULSE_NAMESPACE, derived_id


@given(st.sampled_from(["engagement", "following", "case"]), st.uuids(), st.uuids())
def test_derived_id_is_uuid5_of_the_parts(kind, a, b):
    expected = uuid5(REELPULSE_NAMESPACE, f"{kind}:{a}:{b}")
    got = derived_id(kind, a, b)
    assert got == expected and hash(got) == hash(expected) and str(got) == str(expected)
    assert got.version == 5 and got.variant == expected.variant
    assert isinstance(got, UUID)


@given(st.text(max_size=20), st.uuids())
def test_text_parts_are_used_as_they_are(text, u):
    assert derived_id("erasure", text, u) == uuid5(REELPULSE_NAMESPACE, f"erasure:{text}:{u}")
