"""Moves between grids: the grid a record is in accepts or refuses its move elsewhere."""
from __future__ import annotations

from flask.views import MethodView

from .. import workflow
from . import ApiError, Blueprint, authenticated, current_user, cursor_value, db, page
from .schemas import Move, MoveDecision, MoveList, MoveListArgs

blp = Blueprint("moves", __name__, url_prefix="/api/v1",
                description="Moves of records between grids, agreed by the grid they are in")


@blp.route("/moves")
class Moves(MethodView):
    @authenticated("review")
    @blp.arguments(MoveListArgs, location="query")
    @blp.response(200, MoveList)
    def get(self, args):
        """Open move requests for records in the caller's grids, oldest first: another
        grid's reviewer confirmed an entry that would move the record there."""
        rows = workflow.list_moves(db(), current_user(), args["limit"] + 1, cursor_value(args),
                                   grid=args.get("grid"))
        return page(rows, args["limit"], lambda row: row["id"])


@blp.route("/moves/<id:submission_id>")
class MoveResource(MethodView):
    @authenticated("review")
    @blp.response(200, Move)
    def get(self, submission_id):
        """One move request (its id is the submission's) and how it was decided."""
        try:
            return workflow.get_move(db(), current_user(), submission_id)
        except workflow.NotFound:
            raise ApiError("not_found") from None

    @authenticated("review")
    @blp.arguments(MoveDecision)
    @blp.response(200, Move)
    @blp.alt_response(409, schema="Error", description="already decided or withdrawn")
    def post(self, decision, submission_id):
        """Accept (the entry merges and the record moves) or refuse (the entry is rejected
        with the note; the record stays). Refusing needs a note."""
        try:
            return workflow.decide_move(db(), current_user(), submission_id,
                                        decision["action"], decision["note"])
        except workflow.NoteRequired:
            raise ApiError("note_required", {"note": ["Required to refuse."]},
                           action=decision["action"]) from None
        except workflow.NotFound:
            raise ApiError("not_found") from None
        except workflow.NotOpen as exc:
            raise ApiError("move_decided", state=exc.state) from None
