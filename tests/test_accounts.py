"""Auth: slow password hashes, hashed tokens, expiry, revocation, throttling, audit."""
import sqlite3

import pytest

from conftest import FAST_HASH, PASSWORD, seed
from gridcollect import accounts, store


def token_of(client, username="w3", password=PASSWORD):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def test_login_answers_token_expiry_and_user(client):
    response = token_of(client)
    assert response.status_code == 200
    assert set(response.json) == {"token", "expires_at", "user"}
    assert response.json["user"] == {"username": "w3", "role": "worker",
                                     "scope": ["420502001002003"], "unmasked": False}
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {response.json['token']}"})
    assert me.json["username"] == "w3"


def test_passwords_and_tokens_are_stored_hashed(client, db):
    token = token_of(client).json["token"]
    dump = "\n".join(db.conn.iterdump())
    assert token not in dump and PASSWORD not in dump
    stored = store.get_user(db, "w3")["password_hash"]
    assert stored.startswith("scrypt$") and accounts.verify_password(PASSWORD, stored)
    assert not accounts.verify_password("wrong", stored)


@pytest.mark.parametrize("username, password", [("w3", "wrong"), ("nobody", PASSWORD),
                                                ("", PASSWORD), ("w3 ", PASSWORD)])
def test_bad_credentials_are_401_and_audited(client, db, username, password):
    response = token_of(client, username, password)
    assert response.status_code in (401, 422)
    if response.status_code == 401:
        assert response.json["error"] == "bad_credentials"
        actions = [e["action"] for e in store.list_audit(db, action="login_failed")]
        assert actions == ["login_failed"]


def test_repeated_failures_are_throttled(client):
    for _ in range(5):
        assert token_of(client, password="wrong").status_code == 401
    throttled = token_of(client)  # even the right password, for now
    assert throttled.status_code == 429 and throttled.json["error"] == "throttled"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 15 * 60 + 1
    assert token_of(client, "w4").status_code == 200  # other users are not locked out


def test_a_success_clears_the_count(client):
    for _ in range(4):
        token_of(client, password="wrong")
    assert token_of(client).status_code == 200
    for _ in range(4):
        token_of(client, password="wrong")
    assert token_of(client).status_code == 200


def slow_logins(tmp_path, monkeypatch, attempts):
    """Run ``[(username, password, address)]`` at once, each hash taking 0.2 s;
    the outcome of each, in order: "ok", "BadCredentials" or ("Throttled", seconds)."""
    import threading
    import time
    path = tmp_path / "t.db"
    real_verify = accounts.verify_password

    def slow_verify(password, stored):
        time.sleep(0.2)
        return real_verify(password, stored)

    monkeypatch.setattr(accounts, "verify_password", slow_verify)
    settings = accounts.Settings(scrypt_n=FAST_HASH)
    outcomes = [None] * len(attempts)

    def attempt(i, username, password, address):
        try:
            accounts.login(store.connect(path), username, password, address, settings)
            outcomes[i] = "ok"
        except accounts.BadCredentials:
            outcomes[i] = "BadCredentials"
        except accounts.Throttled as exc:
            outcomes[i] = ("Throttled", exc.retry_after)

    threads = [threading.Thread(target=attempt, args=(i, *a)) for i, a in enumerate(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.fixture
def accounts_db(tmp_path):
    db = store.connect(tmp_path / "t.db")
    store.migrate(db, "2026-01-01T00:00:00.000+08:00")
    seed(db)
    return db


def test_parallel_guesses_cannot_pass_the_limit(accounts_db, tmp_path, monkeypatch):
    """Twelve guesses at once, each hash slow: only five are ever checked; the others
    are told to retry in a second, and are not failures."""
    outcomes = slow_logins(tmp_path, monkeypatch,
                           [("w3", f"wrong{i}", f"10.0.0.{i}") for i in range(12)])
    assert sorted(map(str, outcomes)) == sorted(
        ["BadCredentials"] * 5 + [str(("Throttled", 1))] * 7)
    actions = [e["action"] for e in store.list_audit(accounts_db)]
    assert actions.count("login_failed") == 5 and "login_throttled" not in actions


def test_parallel_right_passwords_are_told_to_retry_at_once(accounts_db, tmp_path,
                                                            monkeypatch):
    """Many phones of one office (one address) logging in at the same moment."""
    outcomes = slow_logins(tmp_path, monkeypatch, [("w3", PASSWORD, "10.0.0.1")] * 8)
    assert outcomes.count("ok") == 5
    assert [o for o in outcomes if o != "ok"] == [("Throttled", 1)] * 3
    settings = accounts.Settings(scrypt_n=FAST_HASH)
    accounts.login(accounts_db, "w3", PASSWORD, "10.0.0.1", settings)  # the retry


def test_a_throttled_flood_is_audited_once_per_window(accounts_db):
    settings = accounts.Settings(scrypt_n=FAST_HASH)
    for _ in range(5):
        with pytest.raises(accounts.BadCredentials):
            accounts.login(accounts_db, "nobody", "x", "10.0.0.9", settings)
    for _ in range(50):
        with pytest.raises(accounts.Throttled) as refused:
            accounts.login(accounts_db, "nobody", "x", "10.0.0.9", settings)
        assert refused.value.retry_after > 60
    throttled = store.list_audit(accounts_db, action="login_throttled")
    assert [(e["actor"], e["object_id"]) for e in throttled] == [("nobody", "user:nobody")]


def test_an_attempt_that_never_finished_counts_as_a_failure(accounts_db):
    """A server killed while hashing leaves its attempt in flight: after a minute it
    is a failure, so killing servers cannot be used to guess without limit."""
    from gridcollect import clock
    import datetime
    settings = accounts.Settings(scrypt_n=FAST_HASH)
    with store.write(accounts_db):
        store.add_login_attempt(accounts_db, ["user:w3"] * 5, clock.iso(
            clock.now() - datetime.timedelta(minutes=2)), "2000-01-01T00:00:00.000+08:00")
    with pytest.raises(accounts.Throttled) as refused:
        accounts.login(accounts_db, "w3", PASSWORD, "10.0.0.1", settings)
    assert refused.value.retry_after > 60


def test_a_password_changed_during_login_gives_no_token(accounts_db, monkeypatch):
    db = accounts_db
    real_verify = accounts.verify_password

    def verify_then_reset(password, stored):
        ok = real_verify(password, stored)
        accounts.change_user(db, "admin", "w3", password="a-new-passw0rd", scrypt_n=FAST_HASH)
        return ok

    monkeypatch.setattr(accounts, "verify_password", verify_then_reset)
    with pytest.raises(accounts.BadCredentials):
        accounts.login(db, "w3", PASSWORD, "10.0.0.1", accounts.Settings(scrypt_n=FAST_HASH))
    assert db.execute("SELECT count(*) FROM tokens").fetchone()[0] == 0
    assert [e["action"] for e in store.list_audit(db, action="login_failed")] == ["login_failed"]


def test_one_address_guessing_many_users_is_throttled(tmp_path):
    from gridcollect.app import create_app
    app = create_app({"DATABASE": str(tmp_path / "t.db"), "SCRYPT_N": FAST_HASH,
                      "LOGIN_MAX_FAILURES_PER_ADDRESS": 3})
    seed(app.extensions["gridcollect"].db())
    client = app.test_client()
    for name in ("a1", "a2", "a3"):
        assert token_of(client, name, "x").status_code == 401
    assert token_of(client, "w4").status_code == 429


def test_expired_tokens_are_refused(tmp_path):
    from gridcollect.app import create_app
    app = create_app({"DATABASE": str(tmp_path / "t.db"), "SCRYPT_N": FAST_HASH,
                      "TOKEN_TTL_HOURS": -1})
    seed(app.extensions["gridcollect"].db())
    client = app.test_client()
    token = token_of(client).json["token"]
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.json["error"] == "token_invalid"


def test_logout_revokes_the_token(client):
    headers = {"Authorization": f"Bearer {token_of(client).json['token']}"}
    assert client.delete("/api/v1/auth/token", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_password_change_and_disabling_revoke_tokens(client, login):
    w3 = login("w3")
    admin = login("admin")
    changed = admin.patch("/api/v1/users/w3", json={"password": "new password 1"})
    assert changed.status_code == 200, changed.json
    assert w3.get("/api/v1/me").status_code == 401
    assert token_of(client).status_code == 401
    fresh = token_of(client, password="new password 1").json["token"]
    admin.patch("/api/v1/users/w3", json={"disabled": True})
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {fresh}"}
                      ).status_code == 401
    assert token_of(client, password="new password 1").status_code == 401


def test_admin_manages_users(login):
    admin = login("admin")
    created = admin.post("/api/v1/users", json={"username": "w9", "role": "worker",
                                                "scope": ["420502001002003"],
                                                "password": "long enough"})
    assert created.status_code == 201 and created.json["role"] == "worker"
    assert admin.post("/api/v1/users", json={"username": "w9", "role": "worker",
                                             "scope": ["420502001002003"],
                                             "password": "long enough"}).status_code == 409
    assert admin.post("/api/v1/users", json={"username": "w10", "role": "worker",
                                             "password": "long enough"}).status_code == 422
    moved = admin.patch("/api/v1/users/w9", json={"scope": ["420502001002004"]})
    assert moved.json["scope"] == ["420502001002004"]
    assert admin.patch("/api/v1/users/w9", json={"scope": ["42"]}).status_code == 422
    assert admin.patch("/api/v1/users/ghost", json={"role": "admin"}).status_code == 404
    assert "w9" in [u["username"] for u in admin.get("/api/v1/users").json["items"]]
    assert admin.post("/api/v1/users/w9/revoke-tokens").json == {"revoked": 0}
    actions = [e["action"] for e in admin.get("/api/v1/audit?actor=admin").json["items"]]
    assert actions[:3] == ["tokens_revoke", "user_change", "user_add"]


def test_the_audit_log_is_append_only(db, login):
    login("w3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET actor = 'someone else'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit")
    admin = login("admin")
    for method in ("post", "put", "patch", "delete"):
        assert getattr(admin, method)("/api/v1/audit").status_code == 405


def test_audit_pages_newest_first(login):
    admin = login("admin")
    for name in ("x1", "x2", "x3"):
        admin.post("/api/v1/users", json={"username": name, "role": "analyst",
                                          "password": "long enough"})
    first = admin.get("/api/v1/audit?action=user_add&limit=2").json
    rest = admin.get(f"/api/v1/audit?action=user_add&limit=50&cursor={first['next']}").json
    ids = [e["id"] for e in first["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 3 + 7  # 7 seeded users


@pytest.mark.parametrize("change", [{"unmasked": 1}, {"unmasked": "true"}, {"disabled": "on"},
                                    {"disabled": 0}])
def test_user_flags_are_true_or_false_only(login, db, change):
    """Who sees personal data unmasked is not decided by a truthy string."""
    response = login("admin").patch("/api/v1/users/w3", json=change)
    assert response.status_code == 422 and response.json["error"] == "invalid_request"
    row = store.get_user(db, "w3")
    assert (row["unmasked"], row["disabled"]) == (0, 0)


def test_a_method_not_allowed_says_what_is(client):
    response = client.put("/api/v1/me")
    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET"}


@pytest.mark.parametrize("body", [{}, None])
def test_a_user_change_must_change_something(login, body):
    kwargs = {"json": body} if body is not None else {}
    response = login("admin").patch("/api/v1/users/w3", **kwargs)
    assert response.status_code == 422 and response.json["error"] == "invalid_request"
