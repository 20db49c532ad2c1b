"""Confirm: supervisors confirm, reject or return pending submissions."""
from __future__ import annotations

from flask.views import MethodView

from .. import workflow
from . import ApiError, Blueprint, authenticated, current_user, db
from .schemas import BulkReviewRequest, BulkReviewResults, ReviewRequest, Submission
from .submissions import dump

blp = Blueprint("reviews", __name__, url_prefix="/api/v1",
                description="Confirm: review submissions")


@blp.route("/submissions/<id:submission_id>/review")
class ReviewResource(MethodView):
    @authenticated("review")
    @blp.arguments(ReviewRequest)
    @blp.response(200, Submission)
    @blp.alt_response(409, schema="Error", description="no longer pending")
    def post(self, review, submission_id):
        """Confirm, reject or return (reject and return need a note). A submission in
        conflict is confirmed only with ``"force": true``."""
        try:
            submission = workflow.review(db(), current_user(), submission_id,
                                         review["action"], review["note"], review["force"])
        except workflow.NoteRequired:
            raise ApiError("note_required", {"note": ["Required to reject or return."]},
                           action=review["action"]) from None
        except workflow.NotFound:
            raise ApiError("not_found") from None
        except workflow.NotPending as exc:
            if exc.state == "conflict":
                raise ApiError("needs_force") from None
            raise ApiError("not_pending", state=exc.state) from None
        return dump([submission])[0]


@blp.route("/reviews")
class BulkReview(MethodView):
    @authenticated("review")
    @blp.arguments(BulkReviewRequest)
    @blp.response(200, BulkReviewResults)
    def post(self, review):
        """Review up to 500 submissions at once: a result per id, in request order."""
        try:
            results = workflow.review_many(db(), current_user(), review["ids"],
                                           review["action"], review["note"], review["force"])
        except workflow.NoteRequired:
            raise ApiError("note_required", {"note": ["Required to reject or return."]},
                           action=review["action"]) from None
        return {"results": results}
