"""marshmallow schemas: what a client may send (load) and what it reads (dump)."""
from __future__ import annotations

import re

import marshmallow as ma
from marshmallow import fields, validate

from .. import clock
from ..access import ROLES
from ..merge import CONFLICTS
from ..monitor import LEVELS
from ..grids import PREFIX
from ..standards import RECORD_TYPES
from ..workflow import (
    ACTIONS,
    MAX_BATCH,
    MAX_NOTE,
    MOVE_DECISIONS,
    NOTE_TEXT,
    REVIEW_ACTIONS,
    STATES,
)

MAX_CLIENT_ID, MAX_GRID_CODE, MAX_TIMESTAMP = 100, 64, 40  # characters
MAX_ID = 2 ** 53  # what every JSON client can hold exactly
PRINTABLE = re.compile(r"[^\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]+\Z")
# notes are written by people: line breaks and tabs are fine, other controls are not
# the same rules as the OpenAPI document states them (ECMA-262 regular expressions)
DOC_PATTERNS = {
    PRINTABLE: r"^[^\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]+$",
    NOTE_TEXT: r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"
               r"\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]*$",
    PREFIX: r"^(?:[0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})$",
}


class Timestamp(fields.Field):
    """ISO 8601; without an offset it is China Standard Time. Dumped as stored.
    (Documented as a ``date-time`` string: see ``app.create_app``.)"""

    default_error_messages = {"invalid": "Not an ISO 8601 timestamp."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or len(value) > MAX_TIMESTAMP:
            raise self.make_error("invalid")
        try:
            return clock.parse(value)
        except ValueError:
            raise self.make_error("invalid") from None

    def _serialize(self, value, attr, obj, **kwargs):
        return value


def _printable(max_length):
    return [validate.Length(1, max_length),
            validate.Regexp(PRINTABLE, error="Must be printable text without control "
                                              "characters.")]


def _documented(pattern) -> dict:
    """Field metadata giving the OpenAPI document the portable form of ``pattern``."""
    return {"pattern": DOC_PATTERNS[pattern]}


def _grid_prefix_field(description=None, **kwargs) -> fields.String:
    metadata = _documented(PREFIX)
    if description:
        metadata["description"] = description
    return fields.String(validate=validate.Regexp(
        PREFIX, error="Must be a grid code prefix of 6, 9, 12 or 15 digits."),
        metadata=metadata, **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON true or false only: not 1, "on" or "yes" (these decide who sees personal data)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value

_id = fields.Integer(strict=True, validate=validate.Range(1, MAX_ID))


class Schema(ma.Schema):
    class Meta:
        unknown = ma.RAISE  # a misspelt key is an error, not silently ignored


def page_of(name: str, item) -> type:
    """The schema ``name`` of a list answer: ``{"items": [item, ...], "next": cursor or
    null}``."""
    return type(name, (Schema,), {
        "items": fields.List(fields.Nested(item), required=True),
        "next": fields.String(allow_none=True, required=True)})


# --- auth and users -----------------------------------------------------------------

class Login(Schema):
    username = fields.String(required=True, validate=validate.Length(1, 200))
    password = fields.String(required=True, validate=validate.Length(1, 1024),
                             load_only=True)


class User(Schema):
    username = fields.String(required=True)
    role = fields.String(required=True, metadata={"enum": list(ROLES)})
    scope = fields.List(fields.String(), required=True)
    unmasked = fields.Boolean()
    disabled = fields.Boolean()


class Token(Schema):
    token = fields.String(required=True)
    expires_at = fields.String(required=True)
    user = fields.Nested(User, required=True)


class NewUser(Schema):
    username = fields.String(required=True, validate=validate.Length(1, 64))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    scope = fields.List(_grid_prefix_field(), load_default=list,
                        validate=validate.Length(max=1000))
    password = fields.String(required=True, load_only=True, validate=validate.Length(8, 1024))
    unmasked = StrictBoolean(load_default=False)


class UserChange(Schema):
    role = fields.String(validate=validate.OneOf(ROLES))
    scope = fields.List(_grid_prefix_field(), validate=validate.Length(max=1000))
    password = fields.String(load_only=True, validate=validate.Length(8, 1024))
    unmasked = StrictBoolean()
    disabled = StrictBoolean()

    @ma.validates_schema
    def something_to_change(self, data, **kwargs):
        if not data:
            raise ma.ValidationError("Give at least one of role, scope, password, unmasked,"
                                     " disabled.")


UserList = page_of("UserList", User)


class Revoked(Schema):
    revoked = fields.Integer(required=True)


class NewKey(Schema):
    days = fields.Integer(load_default=365, strict=True, validate=validate.Range(1, 3650),
                          metadata={"description": "how long the key works"})


class Key(Schema):
    key_id = fields.String(required=True, metadata={"description": "names the key (the "
                                                                   "start of its hash)"})
    created_at = fields.String(required=True)
    expires_at = fields.String(required=True)
    revoked_at = fields.String(allow_none=True, required=True)


class IssuedKey(Schema):
    key_id = fields.String(required=True)
    expires_at = fields.String(required=True)
    url = fields.String(required=True, metadata={
        "description": "the server URL for ODK Collect or KoboCollect: no password needed; "
                       "shown only now"})
    collect_settings = fields.String(required=True, metadata={
        "description": "ODK Collect's settings for a QR code (zlib, base64 JSON)"})


class KeyList(Schema):
    items = fields.List(fields.Nested(Key), required=True)
    next = fields.String(allow_none=True, required=True)


class Unlocked(Schema):
    username = fields.String(required=True)
    failures_cleared = fields.Integer(required=True, metadata={
        "description": "failed logins forgotten"})


# --- grids and standards ------------------------------------------------------------

class Grid(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    geometry = fields.Dict(allow_none=True, metadata={"description": "GeoJSON geometry"})
    revision = fields.Integer()
    imported_at = fields.String()


GridList = page_of("GridList", Grid)


class PageArgs(Schema):
    """``limit`` and ``cursor`` (from ``next``) of a list."""

    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    cursor = fields.String(validate=validate.Length(max=200))


class SmallPageArgs(PageArgs):
    """A list of larger items: 50 a page, at most 500."""

    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))


class GridListArgs(PageArgs):
    under = _grid_prefix_field()
    geometry = fields.Boolean(load_default=True)


class StandardsArgs(Schema):
    format = fields.String(load_default="native", validate=validate.OneOf(
        ["native", "json-schema"]))


class Standards(Schema):
    """Either form: ``standards`` and ``code_tables`` (native) or ``schemas``."""
    grid_code = fields.String(required=True)
    standards = fields.Dict(metadata={"description": "format=native: per record type, its "
                                                     "version, digest, labels and fields"})
    code_tables = fields.Dict(metadata={"description": "format=native: code -> label"})
    schemas = fields.Dict(metadata={"description": "format=json-schema: one JSON Schema "
                                                   "(2020-12) per record type"})


# --- submissions --------------------------------------------------------------------

class SubmissionItem(Schema):
    client_id = fields.String(required=True, validate=_printable(MAX_CLIENT_ID),
                              metadata={"description": "chosen by the phone, e.g. a UUID;"
                                                       " unique per worker",
                                        **_documented(PRINTABLE)})
    record_type = fields.String(required=True, validate=validate.OneOf(RECORD_TYPES))
    grid_code = fields.String(required=True, validate=validate.Length(max=MAX_GRID_CODE))
    action = fields.String(load_default="upsert", validate=validate.OneOf(ACTIONS))
    data = fields.Dict(required=True)
    collected_at = Timestamp(required=True)
    base_version = fields.Integer(load_default=None, allow_none=True, strict=True,
                                  validate=validate.Range(0, MAX_ID))
    replaces = fields.Integer(load_default=None, allow_none=True, strict=True,
                              validate=validate.Range(1, MAX_ID),
                              metadata={"description": "id of the returned submission this"
                                                       " one corrects"})


class TooManyItems(Exception):
    pass


class SubmitBatch(Schema):
    submissions = fields.List(fields.Nested(SubmissionItem), required=True,
                              validate=validate.Length(1, MAX_BATCH))

    @ma.pre_load
    def refuse_large(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("submissions"), list) \
                and len(data["submissions"]) > MAX_BATCH:
            raise TooManyItems(len(data["submissions"]))  # 413, before any item is read
        return data

    def load(self, data, **kwargs):
        """What the schema above loads; a batch whose every item is plainly well
        formed takes a shortcut (marshmallow costs ~25 µs an item, a quarter of the
        server's time per record). Anything else, and every error, goes through
        marshmallow; tests/test_schemas.py requires both to agree."""
        if kwargs.keys() <= {"unknown"} and kwargs.get("unknown") in (None, ma.RAISE):
            loaded = _plain_batch(data)
            if loaded is not None:
                return loaded
        return super().load(data, **kwargs)


_ITEM_KEYS = frozenset(SubmissionItem._declared_fields)
_ITEM_REQUIRED = frozenset(k for k, f in SubmissionItem._declared_fields.items() if f.required)


def _plain_batch(data):
    """``{"submissions": [...]}`` loaded, or None when marshmallow must decide."""
    if type(data) is not dict or data.keys() != {"submissions"}:
        return None
    items = data["submissions"]
    if type(items) is not list or not 1 <= len(items) <= MAX_BATCH:
        return None
    loaded = []
    for item in items:
        plain = _plain_item(item)
        if plain is None:
            return None
        loaded.append(plain)
    return {"submissions": loaded}


def _plain_item(item):
    if type(item) is not dict or not _ITEM_REQUIRED <= item.keys() <= _ITEM_KEYS:
        return None
    client_id, record_type = item["client_id"], item["record_type"]
    grid_code, data, collected_at = item["grid_code"], item["data"], item["collected_at"]
    action = item.get("action", "upsert")
    base_version, replaces = item.get("base_version"), item.get("replaces")
    if not (type(client_id) is str and 1 <= len(client_id) <= MAX_CLIENT_ID
            and PRINTABLE.match(client_id)
            and type(record_type) is str and record_type in RECORD_TYPES
            and type(grid_code) is str and len(grid_code) <= MAX_GRID_CODE
            and type(action) is str and action in ACTIONS
            and type(data) is dict
            and type(collected_at) is str and len(collected_at) <= MAX_TIMESTAMP
            and (base_version is None or type(base_version) is int
                 and 0 <= base_version <= MAX_ID)
            and (replaces is None or type(replaces) is int and 1 <= replaces <= MAX_ID)):
        return None
    try:
        collected_at = clock.parse(collected_at)
    except ValueError:
        return None
    return {"client_id": client_id, "record_type": record_type, "grid_code": grid_code,
            "action": action, "data": dict(data), "collected_at": collected_at,
            "base_version": base_version, "replaces": replaces}


class FieldError(Schema):
    field = fields.String(required=True)
    code = fields.String(required=True)
    message = fields.String(required=True)


class ItemResult(Schema):
    client_id = fields.String(required=True)
    status = fields.String(required=True, metadata={
        "enum": ["accepted", "duplicate", "invalid", "forbidden"]})
    id = fields.Integer(allow_none=True, required=True)
    errors = fields.List(fields.Nested(FieldError), required=True)


class SubmitResults(Schema):
    results = fields.List(fields.Nested(ItemResult), required=True)


class Review(Schema):
    by = fields.String(required=True)
    at = fields.String(required=True)
    note = fields.String(allow_none=True, required=True)


class Photo(Schema):
    sha256 = fields.String(required=True)
    content_type = fields.String(required=True)
    size = fields.Integer(required=True)
    added_at = fields.String(required=True)
    url = fields.String(required=True)


class Conflict(Schema):
    reason = fields.String(required=True, metadata={"enum": list(CONFLICTS)})
    version = fields.Integer(required=True, metadata={
        "description": "the master record's version when the merge was tried"})


class Submission(Schema):
    id = fields.Integer(required=True)
    client_id = fields.String(required=True)
    record_type = fields.String(required=True)
    grid_code = fields.String(required=True)
    action = fields.String(required=True)
    data = fields.Dict(required=True)
    state = fields.String(required=True, metadata={"enum": list(STATES)})
    worker = fields.String(required=True)
    collected_at = fields.String(required=True)
    received_at = fields.String(required=True)
    standard_version = fields.String(required=True)
    base_version = fields.Integer(allow_none=True, required=True)
    natural_key = fields.String(allow_none=True, required=True)
    review = fields.Nested(Review, allow_none=True, required=True,
                           metadata={"description": "null until reviewed"})
    replaces = fields.Integer(allow_none=True, required=True)
    replaced_by = fields.Integer(allow_none=True, required=True)
    photos = fields.List(fields.Nested(Photo), required=True)
    conflict = fields.Nested(Conflict, allow_none=True, required=True,
                             metadata={"description": "why its merge stopped (state conflict)"})


SubmissionList = page_of("SubmissionList", Submission)


class SubmissionListArgs(SmallPageArgs):
    state = fields.String(validate=validate.OneOf(STATES))
    grid = _grid_prefix_field()
    record_type = fields.String(validate=validate.OneOf(RECORD_TYPES))
    since = Timestamp(metadata={"description": "received at or after"})
    until = Timestamp(metadata={"description": "received before"})


# --- review -------------------------------------------------------------------------

def _note_field() -> fields.String:
    """A reviewer's note: what the worker (or the other grid) reads."""
    return fields.String(load_default=None, allow_none=True, validate=[
        validate.Length(max=MAX_NOTE),
        validate.Regexp(NOTE_TEXT, error="Must be text without control or bidi characters.")],
        metadata=_documented(NOTE_TEXT))


class ReviewRequest(Schema):
    action = fields.String(required=True, validate=validate.OneOf(list(REVIEW_ACTIONS)))
    note = _note_field()
    force = StrictBoolean(load_default=False, metadata={
        "description": "confirm a submission in conflict anyway: it lands on the record's "
                       "current version"})


class BulkReviewRequest(ReviewRequest):
    ids = fields.List(_id, required=True, validate=validate.Length(1, MAX_BATCH))


class BulkReviewResult(Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True, metadata={
        "enum": ["reviewed", "not_pending", "not_found"]})
    state = fields.String(allow_none=True, required=True)


class BulkReviewResults(Schema):
    results = fields.List(fields.Nested(BulkReviewResult), required=True)


# --- moves between grids ------------------------------------------------------------

class Move(Schema):
    id = fields.Integer(required=True, metadata={"description": "the submission's id"})
    record_type = fields.String(required=True)
    key = fields.String(required=True, metadata={"description": "the record's natural key"})
    from_grid = fields.String(required=True, metadata={
        "description": "the grid the record is in (while open), or was in"})
    to_grid = fields.String(required=True, metadata={"description": "the submission's grid"})
    worker = fields.String(required=True)
    collected_at = fields.String(required=True)
    requested_by = fields.String(required=True, metadata={
        "description": "the reviewer who confirmed the entry in its own grid"})
    requested_at = fields.String(required=True)
    state = fields.String(required=True, metadata={
        "enum": ["open", "accepted", "refused", "withdrawn"]})
    decided_by = fields.String(allow_none=True, required=True)
    decided_at = fields.String(allow_none=True, required=True)
    note = fields.String(allow_none=True, required=True)


MoveList = page_of("MoveList", Move)


class MoveListArgs(SmallPageArgs):
    grid = _grid_prefix_field("only records in grids under this prefix")


class MoveDecision(Schema):
    action = fields.String(required=True, validate=validate.OneOf(list(MOVE_DECISIONS)))
    note = _note_field()


# --- audit --------------------------------------------------------------------------

class AuditEntry(Schema):
    id = fields.Integer(required=True)
    at = fields.String(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    object_type = fields.String(allow_none=True)
    object_id = fields.String(allow_none=True)
    detail = fields.Raw(allow_none=True)


AuditList = page_of("AuditList", AuditEntry)


class AuditListArgs(PageArgs):
    actor = fields.String(validate=validate.Length(max=200))
    action = fields.String(validate=validate.Length(max=50))
    object_type = fields.String(validate=validate.Length(max=50))
    object_id = fields.String(validate=validate.Length(max=200))
    since = Timestamp()


# --- master records -----------------------------------------------------------------

class Record(Schema):
    record_type = fields.String(required=True, metadata={"enum": list(RECORD_TYPES)})
    key = fields.String(required=True, metadata={
        "description": "the natural key (masked like its field); an event's submission id"})
    grid_code = fields.String(required=True)
    version = fields.Integer(required=True)
    retired = fields.Boolean(required=True)
    data = fields.Dict(required=True, metadata={"description": "masked per role"})
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)


RecordList = page_of("RecordList", Record)


class RecordListArgs(PageArgs):
    class Meta:
        unknown = ma.INCLUDE  # any other parameter names a field to search by

    grid = _grid_prefix_field()
    changed_since = Timestamp(metadata={"description": "changed at or after"})
    retired = fields.Boolean(metadata={"description": "only retired (true) or current"})


class Source(Schema):
    version = fields.Integer(required=True)
    submission_id = fields.Integer(required=True)
    worker = fields.String(required=True)
    collected_at = fields.String(required=True)
    confirmed_by = fields.String(required=True)
    confirmed_at = fields.String(required=True)


class HistoryEntry(Source):
    seq = fields.Integer(required=True, metadata={"description": "order of merging"})
    action = fields.String(required=True, metadata={
        "enum": ["create", "update", "retire", "restore"]})
    grid_code = fields.String(required=True)
    moved_from = fields.String(allow_none=True, required=True)
    changes = fields.Dict(required=True, metadata={
        "description": "field -> [value before, value after], masked per role"})


class RecordDetail(Record):
    history = fields.List(fields.Nested(HistoryEntry), required=True)
    provenance = fields.Dict(keys=fields.String(), values=fields.Nested(Source),
                             required=True, metadata={
                                 "description": "field -> the change that set its value"})


# --- monitor --------------------------------------------------------------------------

class WorkerActivity(Schema):
    worker = fields.String(required=True)
    submitted = fields.Integer(required=True)
    invalid_attempts = fields.Integer(required=True)
    last_activity = fields.String(allow_none=True, required=True)


class AreaFigures(Schema):
    code = fields.String(required=True, metadata={"description": "grid code or prefix"})
    level = fields.String(required=True, metadata={"enum": list(LEVELS)})
    name = fields.String(allow_none=True, required=True, metadata={"description": "grids"})
    submitted = fields.Integer(required=True)
    pending = fields.Integer(required=True)
    confirmed = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    returned = fields.Integer(required=True)
    conflict = fields.Integer(required=True)
    awaiting_move = fields.Integer(required=True, metadata={
        "description": "confirmed, waiting for another grid to agree to a move"})
    invalid_attempts = fields.Integer(required=True)
    oldest_pending = fields.String(allow_none=True, required=True,
                                   metadata={"description": "received at"})
    median_review_seconds = fields.Float(allow_none=True, required=True, metadata={
        "description": "from receipt to the review that settled it"})
    last_activity = fields.String(allow_none=True, required=True)
    records = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                          metadata={"description": "record type -> current master records"})
    workers = fields.List(fields.Nested(WorkerActivity), allow_none=True, required=True,
                          metadata={"description": "grids only: activity per worker"})


AreaList = page_of("AreaList", AreaFigures)


class AreaListArgs(PageArgs):
    under = _grid_prefix_field("default: the caller's scope")
    level = fields.String(load_default="grid", validate=validate.OneOf(list(LEVELS)))


class FieldErrorCount(Schema):
    record_type = fields.String(required=True)
    field = fields.String(required=True)
    code = fields.String(required=True)
    count = fields.Integer(required=True)
    message = fields.String(required=True)


class FieldErrorList(Schema):
    items = fields.List(fields.Nested(FieldErrorCount), required=True)


class FieldErrorArgs(Schema):
    record_type = fields.String(validate=validate.OneOf(RECORD_TYPES))
    under = _grid_prefix_field("default: the caller's scope")
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))


# --- releases -------------------------------------------------------------------------

class NewRelease(Schema):
    note = fields.String(required=True, validate=[
        validate.Length(1, MAX_NOTE), validate.Regexp(NOTE_TEXT, error="Must be plain text.")],
        metadata=_documented(NOTE_TEXT))


class Release(Schema):
    id = fields.Integer(required=True)
    created_at = fields.String(required=True)
    created_by = fields.String(required=True)
    note = fields.String(required=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                         metadata={"description": "record type -> rows in its table"})
    standard_versions = fields.Dict(keys=fields.String(), values=fields.String(),
                                    required=True)
    size = fields.Integer(required=True, metadata={"description": "bytes of the release file"})
    sha256 = fields.String(required=True, metadata={"description": "of the release file"})


ReleaseList = page_of("ReleaseList", Release)


class ReleaseListArgs(SmallPageArgs):
    pass


class DictionaryColumn(Schema):
    position = fields.Integer(required=True)
    column = fields.String(required=True)
    field = fields.String(allow_none=True, required=True)
    type = fields.String(required=True)
    label_zh = fields.String(required=True)
    label_en = fields.String(required=True)
    description = fields.String(required=True)
    standard = fields.String(required=True)
    code_table = fields.String(allow_none=True, required=True)
    sensitivity = fields.String(required=True)
    mask = fields.String(required=True)
    free_text = fields.Boolean(required=True, metadata={
        "description": "false when a standard fixes the form of its values"})


class CodeTableEntry(Schema):
    standard = fields.String(required=True)
    codes = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class Dictionary(Schema):
    release = fields.Integer(required=True)
    tables = fields.Dict(keys=fields.String(), values=fields.List(
        fields.Nested(DictionaryColumn)), required=True)
    code_tables = fields.Dict(keys=fields.String(), values=fields.Nested(CodeTableEntry),
                              required=True)


class ExportArgs(Schema):
    labels = fields.Boolean(load_default=False, metadata={
        "description": "add a label column after each code column (e.g. sex.label)"})
    headers = fields.String(load_default="en", validate=validate.OneOf(["en", "zh"]),
                            metadata={"description": "column headers: the column names "
                                      "(en), or the data dictionary's Chinese labels (zh)"})


# --- errors -------------------------------------------------------------------------

class Error(Schema):
    code = fields.Integer(required=True, metadata={"description": "HTTP status"})
    status = fields.String(required=True)
    message = fields.String(required=True, metadata={"description": "Chinese / English"})
    error = fields.String(required=True, metadata={"description": "stable problem code"})
    errors = fields.Dict(required=True,
                         metadata={"description": "field -> messages; {} when none"})
