import pytest

from harness.durations import ACCEPTED, parse_duration
from harness.errors import UsageError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("2m", 120.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1h", 3600.0),
        ("5", 5.0),
        ("0.25", 0.25),
        ("1.5s", 1.5),
        ("1h2m3s", 3723.0),
        (" 2M ", 120.0),
    ],
)
def test_accepted_forms(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "  ", "1x", "-3", "-1s", "m5", "5 s", "1m30", "s", "nan", "inf", "1.2.3s"])
def test_rejects_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_duration(text)
    assert ACCEPTED in str(err.value)
    assert repr(text) in str(err.value)
