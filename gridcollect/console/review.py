"""Supervisors: the review queue, one submission against its master record, reviews."""
from __future__ import annotations

import datetime
import flask

from .. import access, clock, merge, records, workflow
from ..grids import is_prefix
from ..standards import RECORD_TYPES
from . import PageError, blp, clean, db, page, pictures, render, row_id, runtime, user, with_args
from .values import field_rows

PAGE = 100  # a supervisor's screenful; the next page continues after the last id


def queue_filters(args) -> tuple:
    """``(filters for workflow.review_queue, {argument: problem})`` from the query."""
    filters, problems = {}, {}
    grid = clean(args.get("grid"))
    if grid:
        if is_prefix(grid):
            filters["grid"] = grid
        else:
            problems["grid"] = "grid"
    record_type = args.get("record_type") or ""
    if record_type in RECORD_TYPES:
        filters["record_type"] = record_type
    worker = clean(args.get("worker"))
    if worker:
        filters["worker"] = worker
    for name, key, shift in (("since", "since", 0), ("until", "until", 1)):
        text = clean(args.get(name))
        if not text:
            continue
        try:
            day = datetime.date.fromisoformat(text)
        except ValueError:
            problems[name] = name
            continue
        # stored times are China time: a day's string prefix compares as its start
        filters[key] = (day + datetime.timedelta(days=shift)).isoformat()
    return filters, problems


@blp.route("/queue")
@page("review")
def queue():
    args = flask.request.args
    filters, problems = queue_filters(args)
    states = [s for s in args.getlist("state") if s in workflow.QUEUE_STATES] \
        or list(workflow.QUEUE_STATES)
    newest = args.get("order") == "newest"
    rows = workflow.review_queue(db(), user(), limit=PAGE + 1, after_id=row_id(
        args.get("after")), newest_first=newest, states=tuple(states), **filters)
    counts = workflow.queue_counts(db(), user(), **filters)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return render("console/queue.html", rows=[_summary(r) for r in rows],
                  counts=counts, problems=problems, states=states, more=more,
                  next_after=rows[-1]["id"] if more else None, newest=newest,
                  record_types=RECORD_TYPES, all_states=workflow.QUEUE_STATES,
                  done=_done(args), problem=args.get("problem"))


def _done(args):
    reviewed, skipped = row_id(args.get("reviewed")), row_id(args.get("skipped"))
    return None if reviewed is None else {"reviewed": reviewed, "skipped": skipped or 0}


SUMMARY_FIELDS = ("name", "address", "description")


def _summary(submission) -> dict:
    data = submission["data"]
    text = next((str(data[f]) for f in SUMMARY_FIELDS if data.get(f)), "")
    return {**submission, "summary": text[:60] + ("…" if len(text) > 60 else "")}


def _back(target: str | None) -> str:
    if target and target.startswith("/console/queue") and "\\" not in target:
        return target
    return flask.url_for("console.queue")


@blp.route("/queue/review", methods=["POST"])
@page("review")
def review_selected():
    form = flask.request.form
    back = _back(form.get("back"))
    ids = [row_id(v) for v in form.getlist("id")]
    ids = list(dict.fromkeys(i for i in ids if i is not None))[:workflow.MAX_BATCH]
    action = form.get("action")
    if action not in workflow.REVIEW_ACTIONS:
        raise PageError(400)
    if not ids:
        return flask.redirect(with_args(back, problem="none_selected", reviewed=None), 303)
    try:
        results = workflow.review_many(db(), user(), ids, action, form.get("note"),
                                       force=False)
    except workflow.NoteRequired:
        return flask.redirect(with_args(back, problem="note_required", reviewed=None), 303)
    except workflow.BadNote:
        raise PageError(400) from None
    reviewed = sum(r["status"] == "reviewed" for r in results)
    return flask.redirect(with_args(back, reviewed=reviewed, skipped=len(results) - reviewed,
                                problem=None, after=None), 303)


# --- one submission -------------------------------------------------------------------

def _submission(submission_id):
    try:
        return workflow.get_submission(db(), user(), submission_id)
    except workflow.NotFound:
        raise PageError(404) from None


@blp.route("/submissions/<id:submission_id>")
@page("read_submissions")
def submission(submission_id):
    rt = runtime()
    found = _submission(submission_id)
    standard = rt.standards.effective(found["record_type"], found["grid_code"])
    record = None
    try:
        record = records.get_record(db(), rt.standards, user(), found["record_type"],
                                    merge.record_key(found))
    except (records.NotFound, records.BadFilter):
        pass
    photos = workflow.photos(db(), [found])[found["id"]]
    try:
        grid = workflow.get_grid(db(), user(), found["grid_code"])
    except workflow.NotFound:
        grid = None
    point = pictures.point_of(found["data"].get("location"))
    shape = pictures.grid_map([grid] if grid else [], {}, "backlog", clock.now(),
                              marker=point)
    in_between = []
    if record is not None and found["state"] == "conflict" and found["base_version"]:
        in_between = [h for h in record["history"] if h["version"] > found["base_version"]]
    next_id = None
    if found["state"] in workflow.REVIEWABLE:
        following = workflow.review_queue(db(), user(), limit=1, after_id=found["id"],
                                          states=workflow.REVIEWABLE)
        next_id = following[0]["id"] if following else None
    return render("console/submission.html", s=found, standard=standard, record=record,
                  rows=field_rows(rt.standards, standard, found["data"],
                                  record["data"] if record else None,
                                  record["provenance"] if record else {}),
                  photos=photos, grid=grid, map=shape, point=point, in_between=in_between,
                  reviewable=found["state"] in workflow.REVIEWABLE
                  and access.may_review(user(), found),
                  next_id=next_id, done=flask.request.args.get("done"),
                  problem=flask.request.args.get("problem"))


@blp.route("/submissions/<id:submission_id>/review", methods=["POST"])
@page("review")
def review_one(submission_id):
    form = flask.request.form
    action = form.get("action")
    if action not in workflow.REVIEW_ACTIONS:
        raise PageError(400)
    here = flask.url_for("console.submission", submission_id=submission_id)
    try:
        reviewed = workflow.review(db(), user(), submission_id, action, form.get("note"),
                                   force=form.get("force") == "1")
    except workflow.NotFound:
        raise PageError(404) from None
    except workflow.NoteRequired:
        return flask.redirect(with_args(here, problem="note_required"), 303)
    except workflow.BadNote:
        raise PageError(400) from None
    except workflow.NotPending as exc:
        return flask.redirect(with_args(here, problem="needs_force" if exc.state == "conflict"
                                    else "not_pending"), 303)
    next_id = row_id(form.get("next"))
    if next_id is not None and form.get("go_next") == "1":
        return flask.redirect(flask.url_for("console.submission", submission_id=next_id,
                                            done=reviewed["state"], previous=submission_id),
                              303)
    return flask.redirect(with_args(here, done=reviewed["state"]), 303)


@blp.route("/submissions/<id:submission_id>/photos/<sha256>")
@page("read_submissions")
def photo(submission_id, sha256):
    try:
        path, content_type = workflow.photo_file(db(), user(), runtime().photo_dir,
                                                 submission_id, sha256)
    except workflow.NotFound:
        raise PageError(404) from None
    response = flask.send_file(path, mimetype=content_type, max_age=86400, etag=sha256)
    response.cache_control.public = False
    response.cache_control.private = True
    return response


# --- moves between grids --------------------------------------------------------------

@blp.route("/moves")
@page("review")
def moves():
    rows = workflow.list_moves(db(), user(), PAGE + 1, row_id(flask.request.args.get("after")))
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return render("console/moves.html", rows=rows, next_after=rows[-1]["id"] if more else None,
                  done=flask.request.args.get("done"), problem=flask.request.args.get("problem"))


@blp.route("/moves/<id:submission_id>", methods=["POST"])
@page("review")
def decide_move(submission_id):
    form = flask.request.form
    action = form.get("action")
    if action not in workflow.MOVE_DECISIONS:
        raise PageError(400)
    back = flask.url_for("console.moves")
    try:
        decided = workflow.decide_move(db(), user(), submission_id, action, form.get("note"))
    except workflow.NotFound:
        raise PageError(404) from None
    except workflow.NoteRequired:
        return flask.redirect(with_args(back, problem="note_required"), 303)
    except workflow.BadNote:
        raise PageError(400) from None
    except workflow.NotOpen:
        return flask.redirect(with_args(back, problem="decided"), 303)
    return flask.redirect(with_args(back, done=decided["state"]), 303)
