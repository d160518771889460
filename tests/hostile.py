"""JSON no well-behaved client sends: bodies that are not objects, and values for each kind of field.

Written out by hand, so that what no JSON library would send (U+0000, lone surrogates, numbers beyond a
double, duplicate members) still reaches the server."""

from __future__ import annotations

NOT_OBJECTS = [
    b"{not json", b"", b"[]", b"[1, 2]", b'"text"', b'"x"', b"42", b"null", b"true", b"{", b"\xff\xfe",
]  # fmt: skip

# Path ids that name nothing: unknown, malformed, hostile.
NOT_IDS = [
    "00000000-0000-4000-8000-000000000000", "not-a-uuid", "12345", "0" * 300, "%20", "caf%C3%A9", "%00",
    "' OR 1=1 --", "segments-x",
]  # fmt: skip

NUL = r'"x\u0000y"'
LONG = '"' + "x" * 20_000 + '"'
DEEP_OBJECT = '{"a":' * 10_000 + "1" + "}" * 10_000
DEEP_ARRAY = "[" * 10_000 + "]" * 10_000
HUGE_NUMBERS = ["1e400", "-1e400", str(10**40), "1e-400", "123456789012345678901234567890.123456789"]
WRONG_TYPES = ["true", "[]", "{}", "12", '"12"', "null"]

# Whole bodies that are no valid request to any route.
WHOLE_BODIES = [b"[]", b'"x"', b"null", b"{}", DEEP_ARRAY.encode(), DEEP_OBJECT.encode(), b'{"unknown": 1}']

# By kind of field (a "number" is a decimal or an integer, a "float" any JSON number): values every such
# field refuses ...
REFUSED: dict[str, list[str]] = {
    "text": [NUL, LONG, DEEP_ARRAY, r'"\ud800"', *WRONG_TYPES[:4], "tru"],
    "number": [*HUGE_NUMBERS, '"NaN"', '"Infinity"', '"-Infinity"', "NaN", DEEP_ARRAY, NUL, LONG, *WRONG_TYPES[:3], "tru"],
    "float": [v for v in (*HUGE_NUMBERS, '"NaN"', "NaN", DEEP_ARRAY, NUL, LONG, *WRONG_TYPES[:3], "tru") if v != "1e-400"],
    "bool": [NUL, "1", '"true"', DEEP_ARRAY, "1e400", "tru"],
    "object": [
        DEEP_OBJECT, DEEP_ARRAY, NUL, LONG, "[]", "12",
        '{"a": "x\\u0000y"}', '{"x\\u0000y": 1}', '{"a": 1e400}', '{"a": [' + NUL + "]}",
        '{"a": ' + '{"a":' * 40 + "1" + "}" * 40 + "}", "tru",
    ],
}  # fmt: skip
# ... and values a field may accept or refuse, but never with a 500.
ODD: dict[str, list[str]] = {
    "text": [
        r'"\udc00x"', r'"\ud83d\ude00"', r'"\u0007\u001b[31m"', '"' + "\U0001f600" * 101 + '"',
        '"' + "x" * 500_000 + '"', '{"a": {"b": {"c": [[[[[]]]]]}}}', '"0001-01-01"', '"0000-01-01"',
        r'"1990-12-10\u0000"', '"\\u0000"',
    ],
    "number": ["-0.0", "1e-320", "1e308", "-1e308", "Infinity", "123456789012345678901234567890"],
    "float": ["1e-400", "-0.0", "1e-320", "1e308", "-1e308", "Infinity", "123456789012345678901234567890"],
    "bool": ["false"],
    "object": ["{}"],
}  # fmt: skip
