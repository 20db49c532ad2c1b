"""OpenRosa 1.0 for ODK Collect, KoboCollect and Enketo: the form list, the forms and
their manifests, and submissions (SPEC.md section 11).

A third door onto the same domain: forms come from the effective standards
(``xlsform``, ``xforms``), a submission goes through ``workflow.submit`` and its
photos through ``workflow.attach_photo``, records through ``records``. A phone
signs in with HTTP Basic (the worker's own account, throttled and audited as every
login), or uses a key URL an admin issued (``/openrosa/key/<key>/...``): a token of
its own that "revoke sessions" ends like any other.
"""
from __future__ import annotations

import base64
import binascii
import csv
import functools
import hashlib
import io
from xml.sax.saxutils import escape

import flask

from .. import access, accounts, records, workflow
from ..standards import RECORD_TYPES
from . import xforms
from .instance import InstanceError, parse
from .xlsform import form_id, parse_form_id

blp = flask.Blueprint("openrosa", __name__)
NS_LIST = "http://openrosa.org/xforms/xformsList"
NS_MANIFEST = "http://openrosa.org/xforms/xformsManifest"
NS_RESPONSE = "http://openrosa.org/http/response"
MAX_GRIDS = 50  # grids whose forms one form list offers (a worker has one or two;
# an admin would get the whole city, and each new form costs pyxform ~0.1 s once)
PHOTO_TYPES = (workflow.JPEG, workflow.PNG)


def runtime():
    return flask.current_app.extensions["gridcollect"]


def db():
    return runtime().db()


class Refusal(Exception):
    def __init__(self, status: int, message: str, headers=None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _response(body: str, status=200, mimetype="text/xml", headers=None) -> flask.Response:
    response = flask.Response(body, status=status, mimetype=mimetype)
    response.headers["X-OpenRosa-Version"] = "1.0"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _message(text: str, status: int, nature: str = "", headers=None) -> flask.Response:
    attribute = f' nature="{nature}"' if nature else ""
    return _response(f'<OpenRosaResponse xmlns="{NS_RESPONSE}"><message{attribute}>'
                     f"{escape(text)}</message></OpenRosaResponse>", status,
                     headers=headers)


@blp.errorhandler(Refusal)
def _refused(exc: Refusal):
    return _message(exc.message, exc.status, headers=exc.headers)


# --- who is asking -----------------------------------------------------------------

CHALLENGE = {"WWW-Authenticate": 'Basic realm="gridcollect", charset="UTF-8"'}


def _basic_user() -> access.User:
    header = flask.request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise Refusal(401, "需要登录 / sign in with your gridcollect account", CHALLENGE)
    try:
        username, _, password = base64.b64decode(encoded.strip(), validate=True).decode(
            "utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Refusal(401, "认证信息格式错误 / malformed Basic credentials", CHALLENGE) from None
    try:
        return accounts.verify(db(), username, password, flask.request.remote_addr or "-",
                               runtime().account_settings)
    except accounts.Throttled as exc:
        raise Refusal(429, f"登录失败次数过多，请 {exc.retry_after} 秒后再试 / too many failed "
                      f"logins: retry in {exc.retry_after} s",
                      {"Retry-After": str(exc.retry_after)}) from None
    except accounts.BadCredentials:
        raise Refusal(401, "用户名或密码错误 / wrong username or password", CHALLENGE) from None


def signed_in(view):
    """The worker of a Basic login, or of the key in the URL; workers (and admins)
    only: forms are for collecting."""

    @functools.wraps(view)
    def wrapper(*args, key=None, **kwargs):
        if key is not None:
            user = accounts.authenticate(db(), key, accounts.KEY_KIND)
            if user is None:
                raise Refusal(401, "这个链接已失效，请向管理员索取新的 / this link was revoked "
                              "or has expired: ask for a new one", CHALLENGE)
        else:
            user = _basic_user()
        if not access.allowed(user, "submit"):
            raise Refusal(403, f"角色 {user.role} 不能采集数据 / the {user.role} role does not "
                          f"collect")
        flask.g.openrosa_user, flask.g.openrosa_key = user, key
        return view(*args, **kwargs)

    return wrapper


def user() -> access.User:
    return flask.g.openrosa_user


def _url(endpoint, **values) -> str:
    key = flask.g.get("openrosa_key")
    if key is not None:
        return flask.url_for(f"openrosa.{endpoint}_by_key", key=key, _external=True, **values)
    return flask.url_for(f"openrosa.{endpoint}", _external=True, **values)


def _grid(code: str):
    if not access.in_scope(user(), code):
        raise Refusal(404, "没有这个表单 / no such form")
    grid = runtime().grids.get(db(), code)
    if grid is None:
        raise Refusal(404, "没有这个表单 / no such form")
    return grid


def _form(form: str) -> tuple:
    parsed = parse_form_id(form)
    if parsed is None:
        raise Refusal(404, "没有这个表单 / no such form")
    return parsed[0], _grid(parsed[1])


# --- forms -------------------------------------------------------------------------

def form_list():
    wanted = flask.request.args.get("formID")
    rows = workflow.list_grids(db(), user(), limit=MAX_GRIDS)
    items = []
    for row in rows:
        grid = runtime().grids.get(db(), row["code"])
        for record_type in RECORD_TYPES:
            name = form_id(record_type, grid.code)
            if wanted and wanted != name:
                continue
            form = xforms.get(runtime().standards, record_type, grid)
            manifest = (f"<manifestUrl>{escape(_url('manifest', form=name))}</manifestUrl>"
                        if form.has_lookup else "")
            items.append(
                f"<xform><formID>{name}</formID><name>{escape(form.title)}</name>"
                f"<version>{escape(form.version)}</version><hash>md5:{form.md5}</hash>"
                f"<downloadUrl>{escape(_url('form', form=name))}</downloadUrl>{manifest}"
                f"</xform>")
    return _response(f'<xforms xmlns="{NS_LIST}">{"".join(items)}</xforms>')


def form(form):
    record_type, grid = _form(form)
    return _response(xforms.get(runtime().standards, record_type, grid).xml)


def _records_csv(record_type, grid) -> bytes:
    """The grid's current master records of the type: key and version, for look-up."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["key", "version"])
    after = None
    while True:
        rows = records.list_records(db(), runtime().standards, user(), record_type,
                                    limit=1000, after_seq=after, grid=grid.code,
                                    retired=False)
        writer.writerows([shown["key"], shown["version"]] for shown, _ in rows)
        if len(rows) < 1000:
            break
        after = rows[-1][1]
    return out.getvalue().encode("utf-8")


def manifest(form):
    record_type, grid = _form(form)
    content = _records_csv(record_type, grid)
    return _response(
        f'<manifest xmlns="{NS_MANIFEST}"><mediaFile><filename>records.csv</filename>'
        f"<hash>md5:{hashlib.md5(content).hexdigest()}</hash>"
        f"<downloadUrl>{escape(_url('media', form=form))}</downloadUrl></mediaFile>"
        f"</manifest>")


def media(form):
    record_type, grid = _form(form)
    return _response(_records_csv(record_type, grid), mimetype="text/csv")


# --- submissions -------------------------------------------------------------------

def _limit() -> int:
    return flask.current_app.config["MAX_PHOTO_BYTES"]


def submission():
    accept = {"X-OpenRosa-Accept-Content-Length": str(_limit())}
    if flask.request.method == "HEAD":
        return _response("", 204, headers=accept)
    upload = flask.request.files.get("xml_submission_file")
    if upload is None:
        raise Refusal(400, "缺少 xml_submission_file / the form's XML "
                      "(xml_submission_file) is missing")
    try:
        item = parse(upload.read(), runtime().standards)
    except InstanceError as exc:
        raise Refusal(400, f"无法读取表单 / {exc}") from None
    photo_name = item.pop("photo")
    item.pop("deprecated")
    photos = _photos(photo_name)  # checked before anything is stored
    rt = runtime()
    [result] = workflow.submit(db(), rt.standards, rt.grids, user(), [item], rt.collect_window)
    if result["status"] == "forbidden":
        raise Refusal(403, f"网格 {item['grid_code']} 不在您的管辖范围内 / grid "
                      f"{item['grid_code']} is not one of yours")
    if result["status"] == "invalid":
        problems = "; ".join(e["message"] for e in result["errors"])
        raise Refusal(400, f"提交被拒绝，请修改后重新发送 / refused, correct and send "
                      f"again: {problems}")
    if result["status"] == "duplicate" and not _same(item, result["id"]):
        raise Refusal(409, f"这个 instanceID 已用于另一份内容不同的表单 / instanceID "
                      f"{item['client_id']} was already sent with other content")
    attached = _attach(result["id"], photos)
    text = ("已收到，等待审核 / received, waiting for review" if result["status"] == "accepted"
            else "此前已收到 / already received")
    if attached:
        text += f" ({attached} 张照片 / photos)"
    return _message(text, 201, "submit_success", headers=accept)


def _same(item: dict, submission_id: int) -> bool:
    """Whether a re-sent form holds what was stored the first time (normalised as the
    standard normalises it: the same XML sent again always does)."""
    stored = workflow.get_submission(db(), user(), submission_id)
    grid = runtime().grids.get(db(), item["grid_code"])
    standard = runtime().standards.effective(item["record_type"], item["grid_code"])
    document = standard.validate(item["data"], grid).document
    return (stored["record_type"], stored["grid_code"], stored["data"]) == (
        item["record_type"], item["grid_code"], document)


def _photos(photo_name: str | None) -> list:
    """``[(content, type)]`` of the images sent with the form. The form's own photo
    must be a whole JPEG or PNG: refused before the entry is stored, so that sending
    it again, fixed, can still succeed; other attachments that are not images are
    ignored."""
    found = []
    for name, upload in flask.request.files.items(multi=True):
        if name == "xml_submission_file":
            continue
        content = upload.read()
        kind = workflow.photo_type(content)
        if kind is None:
            if name == photo_name:
                raise Refusal(400, f"照片 {name} 不是完整的 JPEG 或 PNG 文件 / the photo "
                              f"{name} is not a whole JPEG or PNG")
            continue
        found.append((content, kind))
    return found


def _attach(submission_id: int, photos: list) -> int:
    """The form's photos, stored like the API's."""
    count = 0
    for content, kind in photos:
        try:
            workflow.attach_photo(db(), user(), runtime().photo_dir, submission_id, content,
                                  kind)
            count += 1
        except workflow.PhotoClosed:
            pass  # reviewed since its first sending: the entry is closed
    return count


def _routes():
    """Each view twice: with Basic authentication, and under a key URL."""
    for rule, view, methods in (("/formList", form_list, ["GET"]),
                                ("/forms/<form>.xml", form, ["GET"]),
                                ("/forms/<form>/manifest", manifest, ["GET"]),
                                ("/forms/<form>/records.csv", media, ["GET"]),
                                ("/submission", submission, ["HEAD", "POST"])):
        name = view.__name__
        wrapped = signed_in(view)
        blp.add_url_rule("/openrosa" + rule, name, wrapped, methods=methods)
        blp.add_url_rule("/openrosa/key/<key>" + rule, name + "_by_key", wrapped,
                         methods=methods)


_routes()
