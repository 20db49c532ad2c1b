"""The one catalogue of validation errors: stable codes, Chinese and English.

Every error anywhere (Cerberus rules, the compiled fast path, spreadsheet cell
conversion) is a ``FieldError(field, code, message)`` whose code is a key of
``CATALOGUE``. Messages name the field by its label from the standard:
``公民身份号码校验位错误 / Citizen ID number: check character is wrong``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from cerberus import errors as cerberus_errors

# code: (Chinese template, English template); {zh} / {en} are the field labels.
CATALOGUE = {
    # Cerberus built-in rules
    "required": ("{zh}为必填项", "{en}: required field is missing"),
    "unknown_field": ("{zh}不是本标准定义的字段", "{en}: not a field of this standard"),
    "null": ("{zh}不能为 null", "{en}: must not be null"),
    "empty": ("{zh}不能为空", "{en}: must not be empty"),
    "type": ("{zh}类型错误", "{en}: wrong type"),
    "not_in_code_table": ("{zh}不是代码表中的代码", "{en}: not a code of its code table"),
    "too_short": ("{zh}太短", "{en}: too short"),
    "too_long": ("{zh}太长", "{en}: too long"),
    "too_small": ("{zh}小于允许的最小值", "{en}: below the minimum"),
    "too_large": ("{zh}大于允许的最大值", "{en}: above the maximum"),
    "format": ("{zh}格式错误", "{en}: wrong format"),
    "not_finite": ("{zh}不是有限的数值", "{en}: must be a finite number"),
    "control_character": ("{zh}含有控制字符或不可见字符",
                          "{en}: contains control or invisible characters"),
    "coercion": ("{zh}无法规范化", "{en}: cannot be normalised"),
    "invalid": ("{zh}不符合标准", "{en}: does not meet the standard"),
    # GB 11643 citizen ID numbers
    "id_format": ("{zh}应为18位，前17位为数字，末位为数字或X",
                  "{en}: must be 18 characters, 17 digits then a digit or X"),
    "checksum": ("{zh}校验位错误", "{en}: check character is wrong"),
    "id_birth_date": ("{zh}中的出生日期不存在或早于1850年",
                      "{en}: the birth date in it is not a real date, or before 1850"),
    "id_birth_date_future": ("{zh}中的出生日期在未来",
                             "{en}: the birth date in it is in the future"),
    "id_region": ("{zh}中的地址码不是有效的行政区划代码（GB/T 2260）",
                  "{en}: the address code in it is not a known GB/T 2260 code"),
    # GB 32100 unified social credit codes
    "uscc_format": ("{zh}应为18位，由数字和大写字母（不含I、O、Z、S、V）组成，第3至8位为数字",
                    "{en}: must be 18 characters of 0-9 and A-Y without I, O, Z, S, V; "
                    "characters 3-8 digits"),
    "uscc_org_checksum": ("{zh}中的组织机构代码（GB 11714）校验位错误",
                          "{en}: the GB 11714 organisation code check character is wrong"),
    "uscc_authority": ("{zh}的登记管理部门或机构类别代码无效",
                       "{en}: unknown registration authority or entity type"),
    # other identifiers and codes
    "region": ("{zh}不是有效的行政区划代码（GB/T 2260）", "{en}: not a known GB/T 2260 code"),
    "mobile": ("{zh}不是有效的中国大陆手机号码", "{en}: not a mainland China mobile number"),
    "phone": ("{zh}不是有效的中国大陆手机或固定电话号码",
              "{en}: not a mainland China mobile or landline number"),
    "house_code_grid": ("{zh}中的网格编码与所属网格不一致",
                        "{en}: its grid part is not the submission's grid"),
    "outside_grid": ("{zh}不在所属网格范围内", "{en}: outside the grid cell"),
    # dates and times
    "date": ("{zh}应为真实存在的日期 YYYY-MM-DD", "{en}: must be a real date YYYY-MM-DD"),
    "timestamp": ("{zh}应为 ISO 8601 时间", "{en}: must be an ISO 8601 timestamp"),
    "future": ("{zh}不能晚于当前时间", "{en}: must not be in the future"),
    "too_old": ("{zh}早于允许的最早时间（默认为接收前一年）",
                "{en}: too far in the past (by default, more than a year before receipt)"),
    # cross-field rules
    "sex_mismatch": ("{zh}与公民身份号码第17位不一致",
                     "{en}: does not agree with the 17th digit of the ID number"),
    "birth_date_mismatch": ("{zh}与公民身份号码中的出生日期不一致",
                            "{en}: does not agree with the birth date in the ID number"),
    "floor_above_total": ("{zh}不能大于总层数", "{en}: must not exceed the total floors"),
    # spreadsheet cells
    "excel_number": ("{zh}被 Excel 存成了数字，末尾几位已丢失；请把该列设为文本后重新录入",
                     "{en}: Excel stored it as a number and its last digits are lost; "
                     "format the column as text and enter it again"),
    "not_a_number": ("{zh}应为数字", "{en}: must be a number"),
    "not_an_integer": ("{zh}应为整数", "{en}: must be a whole number"),
    "not_a_boolean": ("{zh}应为是/否", "{en}: must be yes or no"),
    "not_json": ("{zh}不是有效的 JSON", "{en}: not valid JSON"),
    # submissions (the envelope around a record)
    "not_retirable": ("{zh}：此类记录没有自然键，不能注销",
                      "{en}: records of this type have no natural key and cannot be retired"),
    "not_replaceable": ("{zh}不是本人被退回且尚未更正的提交",
                        "{en}: not one of your returned submissions awaiting correction"),
}

# API problems: code -> (HTTP status, Chinese, English). Every refusal the
# server gives comes from here; {placeholders} are filled by the caller.
PROBLEMS = {
    "bad_json": (400, "请求体不是有效的 JSON", "the body is not valid JSON: {detail}"),
    "bad_body": (400, "请求体不完整或已损坏，请重新发送", "the body was cut off or malformed in"
                 " transit; send it again"),
    "bad_request": (400, "请求格式错误（请求行、方法、请求头或分块编码）",
                    "the request is malformed (its request line, method, headers or "
                    "chunked encoding); nothing was done"),
    "bad_query": (400, "查询参数错误", "bad query parameter: {detail}"),
    "unknown_filter": (400, "未知的查询字段", "{field} is not a field of {record_type}"),
    "bad_filter_value": (400, "查询值与字段类型或长度不符", "{field}: the value does not fit"
                         " the field's type or length"),
    "unfilterable": (400, "该字段不能用于查询", "{field} cannot be searched by value"),
    "bad_cursor": (400, "分页游标无效", "cursor is not valid; start again without it"),
    "auth_required": (401, "需要登录", "authentication required: send Authorization: Bearer"
                      " <token>"),
    "token_invalid": (401, "令牌无效、已过期或已撤销", "token is invalid, expired or revoked"),
    "bad_credentials": (401, "用户名或密码错误", "wrong username or password"),
    "role_forbidden": (403, "当前角色无权执行此操作", "the {role} role may not do this"),
    "masked_filter": (403, "该字段对当前用户已脱敏，不能按其查询",
                      "{field} is masked for you: it cannot be searched or looked up"),
    "not_found": (404, "对象不存在", "not found"),
    "method_not_allowed": (405, "不支持该请求方法", "method not allowed"),
    "not_pending": (409, "该提交已不是待审核状态", "the submission is no longer pending"
                    " (state: {state})"),
    "needs_force": (409, "该提交合并时发生冲突：确认需加 force，或驳回、退回",
                    "the submission met a conflict: confirm it with \"force\": true (it lands"
                    " on the current version), or reject or return it"),
    "move_decided": (409, "该迁移申请已处理或已撤回", "the move request was already decided"
                     " (state: {state})"),
    "photo_closed": (409, "只能为待审核的本人提交添加照片",
                     "photos can be added only to your own pending submissions"),
    "user_exists": (409, "用户已存在", "user {username} already exists"),
    "too_large": (413, "请求体过大", "the body is larger than {limit} bytes"),
    "uri_too_long": (414, "请求地址过长", "the URL is too long (at most 4,094 bytes); "
                     "ask for fewer values at a time"),
    "too_many_items": (413, "一批最多提交 500 条", "{count} items; at most 500 per batch"),
    "unsupported_media_type": (415, "不支持的内容类型", "Content-Type must be {expected}"),
    "unsupported_encoding": (415, "不支持的内容编码", "Content-Encoding {encoding} is not"
                             " supported: send gzip, or no encoding"),
    "invalid_request": (422, "请求内容不符合接口要求", "the request does not match the API;"
                        " see errors"),
    "note_required": (422, "退回、驳回或拒绝必须填写说明", "a note is required to {action}"),
    "empty_photo": (422, "照片为空：请求体没有内容", "the photo is empty: the body has no"
                    " bytes; send the image itself as the body"),
    "bad_photo": (422, "照片必须是完整的 JPEG 或 PNG 图片",
                  "a photo must be a complete JPEG or PNG image"),
    "bad_account": (422, "用户信息不符合要求", "{detail}"),
    "throttled": (429, "登录失败次数过多，请稍后再试",
                  "too many failed logins; retry after {retry_after} s"),
    "headers_too_large": (431, "请求头过大或过多", "the request's headers are too large or "
                          "too many"),
    "internal": (500, "服务器内部错误", "internal error; it has been logged"),
    "busy": (503, "数据库繁忙，请稍后重试", "the database is busy; retry shortly"),
}


def problem(code: str, **values) -> tuple:
    """``(HTTP status, message)`` of an API problem."""
    status, zh, en = PROBLEMS[code]
    return status, zh + " / " + en.format(**values)

# Cerberus error definition -> catalogue code (group errors are flattened).
_CERBERUS_CODES = {
    cerberus_errors.REQUIRED_FIELD.code: "required",
    cerberus_errors.UNKNOWN_FIELD.code: "unknown_field",
    cerberus_errors.NOT_NULLABLE.code: "null",
    cerberus_errors.EMPTY_NOT_ALLOWED.code: "empty",
    cerberus_errors.BAD_TYPE.code: "type",
    cerberus_errors.UNALLOWED_VALUE.code: "not_in_code_table",
    cerberus_errors.UNALLOWED_VALUES.code: "not_in_code_table",
    cerberus_errors.MIN_LENGTH.code: "too_short",
    cerberus_errors.MAX_LENGTH.code: "too_long",
    cerberus_errors.MIN_VALUE.code: "too_small",
    cerberus_errors.MAX_VALUE.code: "too_large",
    cerberus_errors.REGEX_MISMATCH.code: "format",
    cerberus_errors.COERCION_FAILED.code: "coercion",
}


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"field": self.field, "code": self.code, "message": self.message}


def message(code: str, label_zh: str, label_en: str) -> str:
    zh, en = CATALOGUE.get(code, CATALOGUE["invalid"])
    if _LATIN_END.search(label_zh) and _CJK_START.match(zh.partition("{zh}")[2]):
        label_zh += " "  # a name that is not a label (an unknown field): "version 不是…"
    return zh.format(zh=label_zh, en=label_en) + " / " + en.format(zh=label_zh, en=label_en)


_LATIN_END = re.compile(r"[0-9A-Za-z_]$")
_CJK_START = re.compile(r"[\u3400-\u9fff]")


def from_cerberus(error_list) -> list:
    """Flatten a Cerberus ``ErrorList`` into ``(field_path, code)`` pairs."""
    out = []
    for error in error_list:
        if error.is_group_error:
            out.extend(from_cerberus(error.child_errors))
            continue
        field = ".".join(str(p) for p in error.document_path)
        if error.code == cerberus_errors.CUSTOM.code:
            code = error.info[0]  # our rules report the catalogue code itself
        else:
            code = _CERBERUS_CODES.get(error.code, "invalid")
        out.append((field, code))
    return out
