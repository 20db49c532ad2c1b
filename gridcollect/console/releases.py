"""Releases (analysts, admins): list, create with a note, download every table in
every format, read the data dictionary."""
from __future__ import annotations

import logging

import flask

from .. import access, releases, workflow
from ..standards import RECORD_TYPES
from . import PageError, blp, db, page, render, row_id, runtime, user

log = logging.getLogger("gridcollect")
ROWS = 50
CODE_LIMIT = 200  # codes of a table shown on the page (GB/T 2260 has thousands)


@blp.route("/releases", methods=["GET", "POST"])
@page("read_releases")
def releases_page():
    problem = None
    if flask.request.method == "POST":
        if not access.allowed(user(), "create_release"):
            raise PageError(403)
        note = flask.request.form.get("note", "").strip()
        try:
            workflow.check_note(note)
        except workflow.BadNote:
            problem = "bad_note"
        if not note:
            problem = "note_required"
        if problem is None:
            rt = runtime()
            created = releases.create(db(), rt.db_path, rt.standards, user(), note,
                                      rt.release_dir)
            return flask.redirect(flask.url_for("console.release", release_id=created["id"],
                                                created=1), 303)
    before = row_id(flask.request.args.get("before"))
    rows = releases.list_ready(db(), ROWS + 1, before)
    more = len(rows) > ROWS
    rows = rows[:ROWS]
    return render("console/releases.html", rows=rows, problem=problem,
                  next_before=rows[-1]["id"] if more else None,
                  status=400 if problem else 200)


def _release(release_id):
    try:
        release = releases.get(db(), release_id)
    except releases.NotFound:
        raise PageError(404) from None
    if not releases.file_path(release).is_file():
        log.error("release %s: its file %s is missing", release_id, release["file"])
        raise PageError(404)
    return release


@blp.route("/releases/<id:release_id>")
@page("read_releases")
def release(release_id):
    found = _release(release_id)
    dictionary = releases.read_dictionary(releases.file_path(found))
    return render("console/release.html", r=found, dictionary=dictionary,
                  code_limit=CODE_LIMIT,
                  record_types=RECORD_TYPES, formats=list(releases.FORMATS),
                  created=flask.request.args.get("created"))


@blp.route("/releases/<id:release_id>/dictionary.json")
@page("read_releases")
def release_dictionary(release_id):
    found = _release(release_id)
    response = flask.jsonify({"release": release_id,
                              **releases.read_dictionary(releases.file_path(found))})
    response.headers["Content-Disposition"] = (
        f'attachment; filename="release-{release_id}-dictionary.json"')
    return response


@blp.route(f"/releases/<id:release_id>/tables/<any({', '.join(RECORD_TYPES)}):record_type>"
           f".<any({', '.join(releases.FORMATS)}):fmt>")
@page("read_releases")
def release_table(release_id, record_type, fmt):
    found = _release(release_id)
    args = flask.request.args
    body = releases.export(db(), found, record_type, fmt, user(),
                           labels=args.get("labels") == "1",
                           headers="zh" if args.get("headers") == "zh" else "en")
    response = flask.Response(flask.stream_with_context(body),
                              mimetype=releases.FORMATS[fmt])
    response.headers["Content-Disposition"] = (
        f'attachment; filename="release-{release_id}-{record_type}.{fmt}"')
    return response
