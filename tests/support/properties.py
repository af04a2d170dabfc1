"""Hypothesis profiles, and example counts that follow the profile in use."""

from __future__ import annotations

from hypothesis import Phase, settings

# `make mutation` runs each test once per mutant: the same examples every time, a fifth as
# many, none saved, and no shrinking (a mutant is killed by the first failing example).
settings.register_profile(
    "mutation",
    max_examples=20,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
)


def examples(count: int) -> int:
    """`count` examples for a property test under the default profile (100 examples), scaled
    like the profile in use (a fifth under `mutation`)."""
    profile = settings.default
    assert profile is not None
    return max(1, count * profile.max_examples // 100)
