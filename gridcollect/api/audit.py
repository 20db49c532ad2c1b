"""The audit log, read-only: every submission, review, login failure and user change."""
from __future__ import annotations

from flask.views import MethodView

from .. import clock, workflow
from . import Blueprint, authenticated, cursor_value, db, page
from .schemas import AuditList, AuditListArgs

blp = Blueprint("audit", __name__, url_prefix="/api/v1", description="Audit log (admin)")


@blp.route("/audit")
class Audit(MethodView):
    @authenticated("read_audit")
    @blp.arguments(AuditListArgs, location="query")
    @blp.response(200, AuditList)
    def get(self, args):
        """Newest first, filtered by actor, action, object or time."""
        filters = {k: args.get(k) for k in ("actor", "action", "object_type", "object_id")}
        if "since" in args:
            filters["since"] = clock.iso(args["since"])
        rows = workflow.audit_log(db(), before_id=cursor_value(args), limit=args["limit"] + 1,
                                  **filters)
        return page(rows, args["limit"], lambda row: row["id"])
