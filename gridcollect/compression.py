"""gzip on the wire, both ways, for phones on slow, metered links.

Answers: JSON, CSV and text answers are gzipped when the request's
``Accept-Encoding`` allows gzip (streamed exports stream compressed), with
``Vary: Accept-Encoding``; an ETag becomes weak, as the bytes differ from the
identity answer's. Requests: a body sent with ``Content-Encoding: gzip`` is
decompressed before anything reads it, and the size limits hold for what it
decompresses to (a zip bomb is a 413 after reading at most limit + 1 bytes).
"""
from __future__ import annotations

import io
import zlib

import flask

MIN_BYTES = 1024  # smaller answers gain nothing: gzip's own header is 18 bytes
LEVEL = 6
COMPRESSIBLE = ("application/json", "text/csv", "text/html", "text/plain",
                "application/javascript", "text/css", "application/xml", "image/svg+xml")


class BodyError(Exception):
    """A request body that cannot be decompressed: ``problem`` is the catalogue's code."""

    def __init__(self, problem: str, **values):
        super().__init__(problem)
        self.problem, self.values = problem, values


def accepts_gzip(accept_encoding) -> bool:
    return accept_encoding["gzip"] > 0 or (
        "gzip" not in accept_encoding and accept_encoding["*"] > 0)


def compress_response(response: flask.Response) -> flask.Response:
    """``after_request``: gzip the answer if the client takes it and it is worth it."""
    request = flask.request
    if (request.method == "HEAD" or response.status_code < 200
            or response.status_code in (204, 206, 304)
            or "Content-Encoding" in response.headers
            or response.mimetype not in COMPRESSIBLE):
        return response
    response.vary.add("Accept-Encoding")
    if not accepts_gzip(request.accept_encodings):
        return response
    if response.is_streamed:
        response.response = _gzip_stream(response.response)
        response.headers.pop("Content-Length", None)
    else:
        data = response.get_data()
        if len(data) < MIN_BYTES:
            return response
        response.set_data(gzip_bytes(data))
    response.headers["Content-Encoding"] = "gzip"
    tag, weak = response.get_etag()
    if tag and not weak:
        response.set_etag(tag, weak=True)
    return response


def gzip_bytes(data: bytes) -> bytes:
    packer = zlib.compressobj(LEVEL, zlib.DEFLATED, 31)
    return packer.compress(data) + packer.flush()


def _gzip_stream(chunks):
    packer = zlib.compressobj(LEVEL, zlib.DEFLATED, 31)
    try:
        for chunk in chunks:
            packed = packer.compress(chunk.encode() if isinstance(chunk, str) else chunk)
            if packed:
                yield packed
        yield packer.flush()
    finally:  # a file being sent (a stylesheet) is closed, read to its end or not
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def decompress_body(environ, limit: int):
    """Replace a gzip request body by what it decompresses to (at most ``limit`` bytes).
    Raises BodyError: ``too_large`` (decompressed over the limit), ``bad_body`` (not
    gzip, or cut off), ``unsupported_encoding`` (an encoding other than gzip)."""
    encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return
    if encoding not in ("gzip", "x-gzip"):
        raise BodyError("unsupported_encoding", encoding=encoding[:40])
    stream = environ["wsgi.input"]
    left = environ.get("CONTENT_LENGTH")
    left = int(left) if left and left.isdigit() else None  # None: read to the end
    unpacker, out, read = zlib.decompressobj(31), bytearray(), 0
    try:
        while left is None or left > 0:
            chunk = stream.read(65536 if left is None else min(65536, left))
            if not chunk:
                break
            read += len(chunk)
            if read > limit:  # compressed, and still larger than the limit
                raise BodyError("too_large", limit=limit)
            if left is not None:
                left -= len(chunk)
            while chunk:
                out += unpacker.decompress(chunk, limit + 1 - len(out))
                if len(out) > limit:
                    raise BodyError("too_large", limit=limit)
                chunk = unpacker.unconsumed_tail
            if unpacker.eof:
                break  # bytes after the gzip member are ignored, as by gzip -d
    except zlib.error:
        raise BodyError("bad_body") from None
    except BodyError:
        raise
    except Exception:  # the server's errors for malformed chunks, or a phone gone
        raise BodyError("bad_body") from None
    if not unpacker.eof:
        raise BodyError("bad_body")  # cut off in transit
    environ["wsgi.input"] = io.BytesIO(bytes(out))
    environ["CONTENT_LENGTH"] = str(len(out))
    environ.pop("HTTP_CONTENT_ENCODING", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)
