"""Requests only a raw socket sends: malformed or dropped chunked bodies, header and
request lines gunicorn refuses. Each gets a 4xx (or nothing, if the phone is gone),
never a 500, and leaves nothing secret in the log."""
import socket
import time

import pytest
from live import Phone, Server, log_problems, make_city

pytestmark = pytest.mark.slow  # a real server


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("raw")
    server = Server(make_city(folder), folder / "server.log")
    token = Phone(server.url, "w3").token
    yield server, token
    server.stop()
    assert log_problems(server.log_path) == []


def raw_request(port, data: bytes, answer=True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        if not answer:
            time.sleep(0.3)
            return b""
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
        return received


def log_lines_since(server, start: int) -> str:
    time.sleep(0.5)  # gunicorn writes the lines after the answer
    return server.log_path.read_text(errors="replace")[start:]


def test_a_malformed_chunked_body_is_a_400_not_a_500(live_server):
    """A bad chunk size: 400 bad_body, not a 500 with a traceback."""
    server, token = live_server
    start = len(server.log_path.read_text(errors="replace"))
    answer = raw_request(server.port, (
        f"POST /api/v1/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        "ZZ\r\n{}\r\n0\r\n\r\n").encode())
    assert answer.startswith(b"HTTP/1.1 400") and b'"bad_body"' in answer, answer[:80]
    assert "Traceback" not in log_lines_since(server, start)


def test_a_phone_that_drops_a_chunked_upload_logs_no_internal_error(live_server):
    """A phone on a flaky network losing its connection mid-upload is ordinary: no
    internal error, no traceback."""
    server, token = live_server
    start = len(server.log_path.read_text(errors="replace"))
    raw_request(server.port, (
        f"POST /api/v1/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\n{\"sub\r\n").encode(), answer=False)
    lines = log_lines_since(server, start)
    assert "Traceback" not in lines and '" 500 ' not in lines, lines[-2000:]


def test_a_token_in_a_malformed_header_line_is_not_logged(live_server):
    """gunicorn refuses a header line with no colon, and would log it whole at WARNING
    ("Invalid HTTP Header: 'Authorization Bearer <token>'")."""
    server, token = live_server
    start = len(server.log_path.read_text(errors="replace"))
    answer = raw_request(server.port, (
        f"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nAuthorization Bearer {token}\r\n\r\n"
    ).encode())
    assert answer.startswith(b"HTTP/1.1 400")
    assert token not in log_lines_since(server, start)


def test_a_password_in_a_malformed_request_line_is_not_logged(live_server):
    """A client that does not percent-encode (raw UTF-8 or a space in a value): gunicorn
    refuses the request line, and would log it whole, query values shown."""
    server, _ = live_server
    start = len(server.log_path.read_text(errors="replace"))
    answer = raw_request(server.port, (
        "GET /api/v1/records/person?name=张伟&password=hunter2-secret HTTP/1.1\r\n"
        "Host: x\r\n\r\n").encode())
    assert answer.startswith(b"HTTP/1.1 400")
    assert "hunter2-secret" not in log_lines_since(server, start)
