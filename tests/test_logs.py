"""What a log line may show: no ID number, no query value that may be personal."""
import logging

import pytest

from gridcollect.logs import RedactFilter, redact, request_target


@pytest.mark.parametrize("text, expected", [
    ("420502198001011233", "420502********1233"),
    ("id 42050219800101123X.", "id 420502********123X."),
    ("４２０５０２１９８００１０１１２３３", "420502********1233"),  # full-width digits
    ("420502001002003", "420502001002003"),  # a grid code
    ("13812345678 and 2026-11-21", "13812345678 and 2026-11-21"),
    ("12345678901234567890", "12345678901234567890"),  # not an ID: too long
])
def test_id_numbers_are_masked(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("target, expected", [
    ("/api/v1/records/person/420502198001011233", "/api/v1/records/person/420502********1233"),
    ("/api/v1/records/person/%34%32%30502198001011233",
     "/api/v1/records/person/420502********1233"),
    ("/api/v1/records/person?id_number=420502198001011233&limit=5&name=%E5%BC%A0",
     "/api/v1/records/person?id_number=*&limit=5&name=*"),
    ("/api/v1/audit?object_id=420502198001011233&object_type=record",
     "/api/v1/audit?object_id=*&object_type=record"),
    ("/api/v1/submissions?state=pending&grid=420502001002003",
     "/api/v1/submissions?state=pending&grid=420502001002003"),
    ("/api/v1/x%0D%0A127.0.0.1%20-%20%22GET%20/forged%22%1B%E2%80%AE%00",
     '/api/v1/x\\r\\n127.0.0.1 - "GET /forged"\\x1b\\u202e\\x00'),  # no forged line
])
def test_a_request_is_logged_without_personal_values(target, expected):
    assert request_target(target) == expected


def test_the_filter_masks_formatted_lines():
    record = logging.LogRecord("gridcollect", logging.ERROR, __file__, 1,
                               "failed on %s", ("/records/person/420502198001011233",), None)
    assert RedactFilter().filter(record)
    assert record.getMessage() == "failed on /records/person/420502********1233"
