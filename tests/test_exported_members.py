"""The public face: exactly the names in __all__, each presented as greenfetch.X (httpx's check)."""

import greenfetch


def test_all_is_exactly_the_public_names():
    public = sorted(
        (
            name
            for name in vars(greenfetch)
            if not name.startswith("_") and not isinstance(vars(greenfetch)[name], type(greenfetch))
        ),
        key=str.casefold,
    )
    assert sorted(greenfetch.__all__, key=str.casefold) == public


def test_public_objects_present_as_greenfetch():
    for name in greenfetch.__all__:
        obj = getattr(greenfetch, name)
        if isinstance(obj, type) or callable(obj):
            assert obj.__module__ == "greenfetch", name
