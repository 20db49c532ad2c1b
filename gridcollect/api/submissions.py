"""Collect: phones send batches of submissions, read them back, attach photos."""
from __future__ import annotations

import flask
from flask.views import MethodView

from .. import clock, workflow
from . import (
    ApiError,
    Blueprint,
    authenticated,
    current_user,
    cursor_value,
    db,
    page,
    runtime,
)
from .schemas import (
    Photo,
    Submission,
    SubmissionList,
    SubmissionListArgs,
    SubmitBatch,
    SubmitResults,
)

blp = Blueprint("submissions", __name__, url_prefix="/api/v1",
                description="Collect: submissions from phones")

PHOTO_TYPES = (workflow.JPEG, workflow.PNG)


def dump(submissions: list) -> list:
    """Submissions as the API shows them, with their review and photos."""
    photos = workflow.photos(db(), submissions)
    out = []
    for s in submissions:
        item = {k: s[k] for k in Submission().fields if k in s}
        item["review"] = ({"by": s["review_by"], "at": s["review_at"], "note": s["review_note"]}
                          if s["review_by"] else None)
        item["photos"] = [{**p, "url": flask.url_for("submissions.PhotoFile", submission_id=s["id"],
                                                     sha256=p["sha256"])}
                          for p in photos[s["id"]]]
        out.append(item)
    return out


@blp.route("/submissions")
class Submissions(MethodView):
    @authenticated("submit")
    @blp.arguments(SubmitBatch)
    @blp.response(200, SubmitResults)
    @blp.alt_response(413, schema="Error", description="more than 500 items, or too large")
    def post(self, batch):
        """Send a batch (at most 500): a result per item, in request order.

        Idempotent per (worker, client_id): a retried or concurrently re-sent
        item answers ``duplicate`` with the id stored the first time.
        """
        rt = runtime()
        return {"results": workflow.submit(db(), rt.standards, rt.grids, current_user(),
                                           batch["submissions"], rt.collect_window)}

    @authenticated("read_submissions")
    @blp.arguments(SubmissionListArgs, location="query")
    @blp.response(200, SubmissionList)
    def get(self, args):
        """Newest first: a worker's own, a supervisor's grids; ``?cursor=`` pages on."""
        filters = {k: args.get(k) for k in ("state", "grid", "record_type")}
        for key in ("since", "until"):
            if key in args:
                filters[key] = clock.iso(args[key])
        rows = workflow.list_submissions(db(), current_user(), args["limit"] + 1,
                                         cursor_value(args), **filters)
        result = page(rows, args["limit"], lambda row: row["id"])
        result["items"] = dump(result["items"])
        return result


@blp.route("/submissions/<id:submission_id>")
class SubmissionResource(MethodView):
    @authenticated("read_submissions")
    @blp.response(200, Submission)
    def get(self, submission_id):
        """One submission with its review, correction links and photos."""
        return dump([_get(submission_id)])[0]


def _get(submission_id):
    try:
        return workflow.get_submission(db(), current_user(), submission_id)
    except workflow.NotFound:
        raise ApiError("not_found") from None


@blp.route("/submissions/<id:submission_id>/photos")
class Photos(MethodView):
    @authenticated("attach_photo")
    @blp.doc(requestBody={"required": True, "content": {
        t: {"schema": {"type": "string", "format": "binary"}} for t in PHOTO_TYPES}})
    @blp.response(201, Photo)
    @blp.alt_response(409, schema="Error", description="not your pending submission")
    @blp.alt_response(413, schema="Error", description="larger than the photo limit")
    @blp.alt_response(415, schema="Error", description="not image/jpeg or image/png")
    @blp.alt_response(422, schema="Error", description="not a whole JPEG or PNG (bad_photo), "
                      "or no body at all (empty_photo)")
    def post(self, submission_id):
        """Attach a JPEG or PNG (the body is the image); the same image twice is stored once."""
        if flask.request.mimetype not in PHOTO_TYPES:
            raise ApiError("unsupported_media_type", expected=" or ".join(PHOTO_TYPES))
        content = flask.request.get_data(cache=False)
        if not content:
            raise ApiError("empty_photo")
        kind = workflow.photo_type(content)
        if kind is None or kind != flask.request.mimetype:
            raise ApiError("bad_photo")
        try:
            photo = workflow.attach_photo(db(), current_user(), runtime().photo_dir,
                                          submission_id, content, kind)
        except workflow.NotFound:
            raise ApiError("not_found") from None
        except workflow.PhotoClosed:
            raise ApiError("photo_closed") from None
        return {**photo, "url": flask.url_for("submissions.PhotoFile",
                                              submission_id=submission_id,
                                              sha256=photo["sha256"])}


@blp.route("/submissions/<id:submission_id>/photos/<sha256>")
class PhotoFile(MethodView):
    @authenticated("read_submissions")
    @blp.response(200, content_type="image/jpeg", description="the image, as uploaded")
    @blp.doc(responses={"200": {"description": "the image, as uploaded", "content": {
        kind: {"schema": {"type": "string", "format": "binary"}}
        for kind in ("image/jpeg", "image/png")}}})
    def get(self, submission_id, sha256):
        """The image itself."""
        try:
            path, content_type = workflow.photo_file(db(), current_user(), runtime().photo_dir,
                                                     submission_id, sha256)
        except workflow.NotFound:
            raise ApiError("not_found") from None
        response = flask.send_file(path, mimetype=content_type, max_age=86400, etag=sha256)
        # it never changes, but it is personal: the phone may keep it, a proxy may not
        response.cache_control.public = False
        response.cache_control.private = True
        return response
