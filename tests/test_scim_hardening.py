"""The SCIM API under hostile or careless clients: identity hijack, request bodies, start-up.

Each test drives a real werkzeug server over HTTP (or a raw socket, for what an HTTP client
library will not send) against the embedded AWS, and checks in IAM that a refused request
changed nothing.

- Identity: a ``userName`` is one identity in any spelling (case, surrounding whitespace), so a
  POST of an existing one is ``409 uniqueness`` and never adopts the account; of concurrent
  creates of one new ``userName`` exactly one wins, in one server and across two.
- Bodies: only JSON media types (cross-site request forgery), a size limit checked before
  reading and while reading, bounded nesting, strict UTF-8, a client that hangs up mid-body.
- Start-up and logs: a blank token refuses to start; the access log goes through the redactor,
  a secret percent-encoded in a query string included.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import httpx2
import pytest
from seeding import direct_policies_of, policy, tags_of, user_names
from test_scim import BASIC, HOSTSIM, PATCH, TOKEN, USER, hostsim_serve, ok, scim_error, serving

from hostsim.contract.errors import ConfigurationError
from hostsim.embedded_aws import EmbeddedAWS
from hostsim.redaction import MASK, Redactor
from hostsim.scim import BASE_PATH, Credentials, credentials
from hostsim.scim import index as index_module
from hostsim.scim import users as users_module
from hostsim.scim.body import Limits, limits

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

MiB = 1024 * 1024
#: The IAM actions that change something; a refused request sends none of them.
WRITES = frozenset(
    {
        "CreateUser",
        "UpdateUser",
        "DeleteUser",
        "TagUser",
        "UntagUser",
        "AttachUserPolicy",
        "DetachUserPolicy",
        "AddUserToGroup",
        "RemoveUserFromGroup",
    }
)


@pytest.fixture
def scim_url(aws_env: EmbeddedAWS) -> Iterator[str]:
    with serving() as url:
        yield url


@pytest.fixture
def http(scim_url: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(
        base_url=scim_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    ) as client:
        yield client


def writes(aws: EmbeddedAWS) -> list[str]:
    return [action for action in aws.calls() if action in WRITES]


def raw(
    url: str,
    request_head: str,
    body: bytes = b"",
    *,
    hang_up: bool = False,
    timeout: float = 20,
) -> tuple[int, dict[str, Any] | None]:
    """Send ``request_head`` (request line and headers, no blank line) and ``body`` on a raw
    socket to the server of ``url``; the status and JSON body of the answer. ``hang_up`` closes
    the connection after sending instead of reading an answer (status 0)."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(request_head.replace("\n", "\r\n").encode() + b"\r\n\r\n" + body)
        if hang_up:
            sock.shutdown(socket.SHUT_RDWR)
            return 0, None
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    _headers, _, content = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(content) if content else None


def head(url: str, method: str, path: str, **headers: str) -> str:
    parts = urlsplit(url)
    lines = [
        f"{method} {parts.path}{path} HTTP/1.1",
        f"Host: {parts.netloc}",
        f"Authorization: Bearer {TOKEN}",
        *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items()),
    ]
    return "\n".join(lines)


def user(email: str, given: str = "Bob", **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER], "userName": email, "name": {"givenName": given}, **extra}


# --- item 4: one identity per userName, in any spelling --------------------------------------


SPELLINGS = (" bob@example.com", "bob@example.com ", "BOB@Example.com", "\tBob@example.COM\n")


def test_a_post_of_an_existing_user_name_in_any_spelling_is_409_and_changes_nothing(
    http: httpx2.Client, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    reports = policy(iam, "reports-read")
    audit = policy(iam, "audit-read")
    bob = ok(
        http.post("/Users", json=user("bob@example.com", entitlements=[{"value": reports}])), 201
    )
    aws.clear_calls()
    for spelling in (*SPELLINGS, "bob@example.com"):
        takeover = user(spelling, "Mallory", displayName="M", entitlements=[{"value": audit}])
        detail = scim_error(http.post("/Users", json=takeover), 409, "uniqueness")
        assert "bob@example.com" in detail
    assert writes(aws) == []
    assert tags_of(iam, "bob@example.com") == {"Email": "bob@example.com", "FirstName": "Bob"}
    assert direct_policies_of(iam, "bob@example.com") == {reports}
    assert ok(http.get(f"/Users/{bob['id']}"))["name"] == {"givenName": "Bob"}


def test_a_padded_user_name_creates_the_normalised_user(
    http: httpx2.Client, iam: IAMClient
) -> None:
    created = ok(http.post("/Users", json=user("  Carol@Example.com\t")), 201)
    assert created["userName"] == "carol@example.com"
    assert user_names(iam) == {"carol@example.com"}


def test_concurrent_creates_of_one_user_name_exactly_one_wins(
    scim_url: str, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    aws.request_delay = 0.05
    answers = _race([scim_url], 20)
    assert sorted(status for status, _given, _body in answers) == [201] + [409] * 19
    for status, _given, body in answers:
        if status == 409:
            assert body["scimType"] == "uniqueness", body
    [winner] = [given for status, given, _body in answers if status == 201]
    assert aws.calls().count("CreateUser") == 1
    assert "TagUser" not in aws.calls()
    assert user_names(iam) == {"dana@example.com"}
    assert tags_of(iam, "dana@example.com")["FirstName"] == winner


def test_concurrent_creates_through_two_servers_exactly_one_wins(
    aws_env: EmbeddedAWS, iam: IAMClient
) -> None:
    """Two server processes share no lock: IAM's CreateUser is the arbiter. The loser's lookup
    misses the user the winner has just created (IAM's eventual consistency, pinned here so the
    interleaving is the same on every run), so it calls CreateUser too and meets
    EntityAlreadyExists: that must be 409, not an adoption of the winner's account."""
    aws_env.request_delay = 0.05
    aws_env.hide_new_users(seconds=1.0)
    with serving() as first, serving() as second:
        answers = _race([first, second], 10)
    assert sorted(status for status, _given, _body in answers) == [201] + [409] * 9, answers
    [winner] = [given for status, given, _body in answers if status == 201]
    assert "TagUser" not in aws_env.calls()
    aws_env.reset_faults()  # the user is visible to the checks below, however fast they come
    assert user_names(iam) == {"dana@example.com"}
    assert tags_of(iam, "dana@example.com")["FirstName"] == winner


@pytest.fixture
def stale_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The POST's check that the userName is free sees nothing, as it does when another
    server creates the user between that check and the connector's create: neither the bulk
    read (a connector without read-account) nor the server's index knows the user."""
    monkeypatch.setattr(users_module.Snapshot, "by_email", lambda _self, _email: None)
    monkeypatch.setattr(index_module.AccountIndex, "by_email", lambda _self, _email: None)


def _created_elsewhere(iam: IAMClient) -> None:
    """bob, as another server's create of him leaves him (his email tag and his names)."""
    iam.create_user(
        UserName="bob@example.com",
        Tags=[{"Key": "Email", "Value": "bob@example.com"}, {"Key": "FirstName", "Value": "Bob"}],
    )


def test_a_create_that_finds_the_account_there_is_409_not_201(
    http: httpx2.Client, iam: IAMClient, stale_check: None
) -> None:
    """The connector's create is idempotent: it resumes an account that exists with this
    email and reports its creation step ``unchanged``. Only this request's own creation of the
    account is a 201."""
    _created_elsewhere(iam)
    scim_error(http.post("/Users", json=user("bob@example.com", "Mallory")), 409, "uniqueness")


def test_a_create_that_finds_the_account_there_changes_nothing(
    http: httpx2.Client, aws: EmbeddedAWS, iam: IAMClient, stale_check: None
) -> None:
    _created_elsewhere(iam)
    aws.clear_calls()
    http.post("/Users", json=user("bob@example.com", "Mallory"))
    # the POST's create comes first (its check found the userName free): IAM refuses it, and
    # nothing else is sent
    assert writes(aws) == ["CreateUser"]
    assert tags_of(iam, "bob@example.com")["FirstName"] == "Bob"


def _race(urls: list[str], count: int) -> list[tuple[int, str, Any]]:
    """``count`` threads POST one new userName (in various spellings, each with its own given
    name) at once, round robin over ``urls``."""
    barrier = threading.Barrier(count)
    answers: list[tuple[int, str, Any]] = []
    spellings = ("dana@example.com", " Dana@example.com", "DANA@EXAMPLE.COM ")

    def post(index: int) -> None:
        given = f"Dana{index}"
        with httpx2.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as client:
            barrier.wait()
            response = client.post(
                f"{urls[index % len(urls)]}/Users",
                json=user(spellings[index % len(spellings)], given),
            )
        answers.append((response.status_code, given, response.json()))

    threads = [threading.Thread(target=post, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(answers) == count
    return answers


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_a_rename_onto_another_users_email_in_any_spelling_is_409(
    http: httpx2.Client, aws: EmbeddedAWS, iam: IAMClient, method: str
) -> None:
    ada = ok(http.post("/Users", json=user("ada@example.com", "Ada")), 201)
    ok(http.post("/Users", json=user("bob@example.com")), 201)
    aws.clear_calls()
    for spelling in SPELLINGS:
        if method == "PATCH":
            body: dict[str, Any] = {
                "schemas": [PATCH],
                "Operations": [{"op": "replace", "path": "userName", "value": spelling}],
            }
            response = http.patch(f"/Users/{ada['id']}", json=body)
        else:
            response = http.put(f"/Users/{ada['id']}", json=user(spelling, "Ada"))
        scim_error(response, 409, "uniqueness")
    assert writes(aws) == []
    assert user_names(iam) == {"ada@example.com", "bob@example.com"}
    assert tags_of(iam, "bob@example.com") == {"Email": "bob@example.com", "FirstName": "Bob"}


def test_a_patch_of_emails_onto_another_users_email_is_409(
    http: httpx2.Client, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    ada = ok(http.post("/Users", json=user("ada@example.com", "Ada")), 201)
    ok(http.post("/Users", json=user("bob@example.com")), 201)
    aws.clear_calls()
    for operation in (
        {
            "op": "replace",
            "path": "emails",
            "value": [{"value": " BOB@example.com", "primary": True}],
        },
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "Bob@Example.com"},
    ):
        body = {"schemas": [PATCH], "Operations": [operation]}
        scim_error(http.patch(f"/Users/{ada['id']}", json=body), 409, "uniqueness")
    # an email that is nobody's is still not a way to rename: emails is the userName
    other = {"op": "replace", "path": "emails", "value": [{"value": "x@example.com"}]}
    scim_error(
        http.patch(f"/Users/{ada['id']}", json={"schemas": [PATCH], "Operations": [other]}),
        400,
        "mutability",
    )
    # the same address in another spelling changes nothing and is no error
    same = {"op": "replace", "path": "emails", "value": [{"value": " ADA@example.com"}]}
    ok(http.patch(f"/Users/{ada['id']}", json={"schemas": [PATCH], "Operations": [same]}))
    assert writes(aws) == []
    assert user_names(iam) == {"ada@example.com", "bob@example.com"}


def test_the_user_name_filter_finds_the_user_in_any_spelling(http: httpx2.Client) -> None:
    ok(http.post("/Users", json=user("bob@example.com")), 201)
    ok(http.post("/Users", json=user("bobby@example.com")), 201)
    for spelling in SPELLINGS:
        quoted = json.dumps(spelling)
        # an emails value must be an email: scim2-models refuses one padded with a tab or a
        # newline (400 invalidFilter), which is fair; userName takes any string
        emails = ("emails.value", "emails") if spelling.strip(" ") == spelling.strip() else ()
        for attribute in ("userName", *emails):
            found = ok(http.get("/Users", params={"filter": f"{attribute} eq {quoted}"}))
            assert [u["userName"] for u in found["Resources"]] == ["bob@example.com"], (
                attribute,
                spelling,
            )
    search = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName eq " BOB@example.com "',
    }
    assert ok(http.post("/Users/.search", json=search))["totalResults"] == 1


# --- item 12: request bodies ------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/jsonp",
        None,
    ],
)
def test_only_json_media_types_are_accepted_for_a_body(
    scim_url: str, http: httpx2.Client, aws: EmbeddedAWS, iam: IAMClient, content_type: str | None
) -> None:
    """A browser sends ``text/plain``, form and multipart bodies cross-site without asking
    (and with the Basic credentials it cached): none of them may reach the connector."""
    target = ok(http.post("/Users", json=user("ada@example.com")), 201)
    aws.clear_calls()
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps(user("eve@example.com")).encode()
    for method, path in (
        ("POST", "/Users"),
        ("PUT", f"/Users/{target['id']}"),
        ("PATCH", f"/Users/{target['id']}"),
        ("POST", "/Users/.search"),
        ("POST", "/.search"),
    ):
        response = http.request(method, path, content=body, headers=headers)
        scim_error(response, 415)
        assert response.headers["Content-Type"].startswith("application/scim+json")
    root = scim_url.removesuffix(BASE_PATH)
    assert http.post(f"{root}/test", content=b"{}", headers=headers).status_code == 415
    assert writes(aws) == []
    assert user_names(iam) == {"ada@example.com"}


@pytest.mark.parametrize(
    "content_type",
    [
        "application/scim+json",
        "application/json",
        "application/scim+json; charset=utf-8",
        "Application/JSON;Charset=UTF-8",
    ],
)
def test_json_media_types_are_accepted(http: httpx2.Client, content_type: str) -> None:
    body = json.dumps(user("ada@example.com")).encode()
    ok(http.post("/Users", content=body, headers={"Content-Type": content_type}), 201)


def test_deeply_nested_json_is_400_invalid_syntax(http: httpx2.Client, aws: EmbeddedAWS) -> None:
    json_type = {"Content-Type": "application/scim+json"}
    for depth in (100_000, 200):
        nested = "[" * depth + "]" * depth
        prefix = json.dumps({"schemas": [USER], "userName": "a@b.example"})[:-1]
        body = f'{prefix}, "x": {nested}}}'
        response = http.post("/Users", content=body.encode(), headers=json_type)
        assert "nest" in scim_error(response, 400, "invalidSyntax")
    patch = json.dumps({"schemas": [PATCH]})[:-1] + ', "Operations": '
    patch += "[" * 50_000 + "]" * 50_000 + "}"
    scim_error(
        http.patch("/Users/x", content=patch.encode(), headers=json_type), 400, "invalidSyntax"
    )
    assert writes(aws) == []


def test_a_body_over_the_limit_is_413_before_it_is_read(scim_url: str, aws: EmbeddedAWS) -> None:
    """The client announces 200 MB and sends 10 bytes: the answer comes at once (the server
    did not wait for the rest)."""
    started = time.monotonic()
    status, body = raw(
        scim_url,
        head(
            scim_url,
            "POST",
            "/Users",
            Content_Type="application/scim+json",
            Content_Length=str(200 * 1000 * 1000),
        ),
        b'{"schemas"',
    )
    assert time.monotonic() - started < 10
    assert status == 413
    assert body is not None and body["status"] == "413"
    assert "1048576" in body["detail"]
    assert writes(aws) == []


def test_a_chunked_body_over_the_limit_is_413_while_it_is_read(
    http: httpx2.Client, aws: EmbeddedAWS
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"schemas": ["%s"], "userName": "a@b.example", "x": "' % USER.encode()
        for _ in range(40):
            yield b"x" * 65536  # 2.5 MiB in all
        yield b'"}'

    response = http.post(
        "/Users", content=chunks(), headers={"Content-Type": "application/scim+json"}
    )
    assert "Content-Length" not in response.request.headers
    scim_error(response, 413)
    assert writes(aws) == []


def test_a_body_at_the_limit_is_read(http: httpx2.Client) -> None:
    text = json.dumps(user("ada@example.com"))
    body = text.encode() + b" " * (MiB - len(text))
    assert len(body) == MiB
    ok(http.post("/Users", content=body, headers={"Content-Type": "application/json"}), 201)
    over = body + b" "
    scim_error(http.post("/Users", content=over, headers={"Content-Type": "application/json"}), 413)


def test_the_limit_is_configurable_and_advertised(aws_env: EmbeddedAWS) -> None:
    table = {"token": TOKEN, "max_payload_size": 4096}
    assert credentials({}, table).token == TOKEN
    assert limits(table) == Limits(max_payload_size=4096)
    assert limits({}).max_payload_size == MiB
    for bad in (0, -1, "1MB", True, 1.5, 1 << 40):
        with pytest.raises(ConfigurationError, match="max_payload_size"):
            limits({"max_payload_size": bad})
    with serving(limits=Limits(max_payload_size=4096)) as url:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        spc = ok(httpx2.get(f"{url}/ServiceProviderConfig", headers=headers))
        assert spc["bulk"] == {"supported": False, "maxOperations": 0, "maxPayloadSize": 4096}
        big = json.dumps(user("ada@example.com", "x" * 5000))
        response = httpx2.post(
            f"{url}/Users", content=big, headers={**headers, "Content-Type": "application/json"}
        )
        assert "4096" in scim_error(response, 413)


def test_hostsim_serve_takes_the_limit_from_the_scim_table(
    aws: EmbeddedAWS, tmp_path: Path
) -> None:
    config = tmp_path / "idhub.toml"
    config.write_text(f'[scim]\ntoken = "{TOKEN}"\nmax_payload_size = 2048\n')
    with hostsim_serve(
        {"PATH": "/usr/bin:/bin", **aws.client_env()}, "--config", str(config)
    ) as served:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        spc = ok(httpx2.get(f"{served.url}/ServiceProviderConfig", headers=headers))
        assert spc["bulk"]["maxPayloadSize"] == 2048
        big = json.dumps(user("ada@example.com", "x" * 3000))
        response = httpx2.post(
            f"{served.url}/Users",
            content=big,
            headers={**headers, "Content-Type": "application/json"},
        )
        scim_error(response, 413)
    assert "CreateUser" not in aws.calls()


def test_the_default_limit_is_advertised(http: httpx2.Client) -> None:
    assert ok(http.get("/ServiceProviderConfig"))["bulk"]["maxPayloadSize"] == MiB


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_a_missing_or_empty_body_is_400_invalid_syntax(
    scim_url: str, http: httpx2.Client, aws: EmbeddedAWS, method: str
) -> None:
    target = ok(http.post("/Users", json=user("ada@example.com")), 201)
    aws.clear_calls()
    path = "/Users" if method == "POST" else f"/Users/{target['id']}"
    json_type = {"Content-Type": "application/scim+json"}
    for headers in ({}, json_type):
        scim_error(http.request(method, path, headers=headers), 400, "invalidSyntax")
        scim_error(http.request(method, path, content=b"", headers=headers), 400, "invalidSyntax")
    status, body = raw(scim_url, head(scim_url, method, path, Content_Type="application/json"))
    assert (status, body and body["scimType"]) == (400, "invalidSyntax")
    assert writes(aws) == []


def test_invalid_utf8_is_400_invalid_syntax(http: httpx2.Client, aws: EmbeddedAWS) -> None:
    body = b'{"schemas": ["%s"], "userName": "\xff\xfe@example.com"}' % USER.encode()
    response = http.post("/Users", content=body, headers={"Content-Type": "application/json"})
    assert "UTF-8" in scim_error(response, 400, "invalidSyntax")
    assert writes(aws) == []


def test_a_client_that_hangs_up_mid_body_is_no_server_error(
    scim_url: str, aws: EmbeddedAWS, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    raw(
        scim_url,
        head(scim_url, "POST", "/Users", Content_Type="application/json", Content_Length="1000"),
        b'{"schemas": ',
        hang_up=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        "/scim/v2/Users" in record.getMessage() for record in caplog.records
    ):
        time.sleep(0.05)
    logged = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert any("/scim/v2/Users" in message for _name, _level, message in logged), logged
    assert not [entry for entry in logged if entry[1] in ("ERROR", "CRITICAL")], logged
    assert not any('" 500 ' in message for _name, _level, message in logged), logged
    assert writes(aws) == []


# --- item 14: start-up refusals and the access log ------------------------------------------


@pytest.mark.parametrize("blank", [" ", "   ", "\t\n", "\u00a0"])
def test_a_blank_token_or_password_is_refused(blank: str) -> None:
    with pytest.raises(ConfigurationError, match="IDHUB_SCIM_TOKEN"):
        credentials({"IDHUB_SCIM_TOKEN": blank}, {})
    with pytest.raises(ConfigurationError, match=r"\[scim\] token"):
        credentials({}, {"token": blank})
    with pytest.raises(ConfigurationError, match=r"\[scim\] password"):
        credentials({}, {"username": "idhub", "password": blank})
    with pytest.raises(ConfigurationError, match="IDHUB_SCIM_USERNAME"):
        credentials({"IDHUB_SCIM_USERNAME": blank, "IDHUB_SCIM_PASSWORD": "pw-123456"}, {})


def test_a_token_with_surrounding_whitespace_or_a_username_with_a_colon_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="whitespace"):
        credentials({"IDHUB_SCIM_TOKEN": " abcdef0123456789"}, {})
    with pytest.raises(ConfigurationError, match="colon"):
        credentials({}, {"username": "id:hub", "password": "pw-123456"})


def test_hostsim_serve_refuses_a_blank_token_with_one_line(
    aws: EmbeddedAWS, tmp_path: Path
) -> None:
    env = {"PATH": "/usr/bin:/bin", **aws.client_env(), "IDHUB_SCIM_TOKEN": "   "}
    done = subprocess.run(
        [HOSTSIM, "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("hostsim: error: ") and "IDHUB_SCIM_TOKEN" in line
    config = tmp_path / "idhub.toml"
    config.write_text('[scim]\ntoken = "  "\n')
    done = subprocess.run(
        [HOSTSIM, "serve", "--port", "0", "--config", str(config)],
        env={"PATH": "/usr/bin:/bin", **aws.client_env()},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done
    assert "token" in done.stderr and len(done.stderr.splitlines()) == 1


#: A token with the characters URL encoding changes (``/``, ``+``, ``=``).
@pytest.mark.parametrize(
    ("table", "env", "what"),
    [
        ({"token": "abc12"}, {}, "[scim] token has 5 characters"),
        ({}, {"IDHUB_SCIM_TOKEN": "fifteen-chars-x"}, "IDHUB_SCIM_TOKEN has 15 characters"),
        ({"username": "idhub", "password": "short-pw-11"}, {}, "password has 11 characters"),
    ],
)
def test_a_secret_too_short_to_guess_or_mask_is_refused_at_start_up(
    table: dict[str, str], env: dict[str, str], what: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(what)) as refused:
        credentials(env, table)
    secret = {**table, **env}.get("password") or next(iter({**table, **env}.values()))
    assert secret not in str(refused.value)
    # the shortest accepted
    assert credentials({}, {"token": "x" * 16}).token == "x" * 16
    assert credentials({}, {"username": "u", "password": "p" * 12}).basic


SPECIAL_TOKEN = "tok/en+with=specials~0123456789"


def _spellings(secret: str) -> set[str]:
    """The ways a secret can appear in a request target: as is, percent-encoded (upper and lower
    case hex), and with every character encoded."""
    encoded = quote(secret, safe="")
    return {
        secret,
        encoded,
        encoded.lower(),
        "".join(f"%{byte:02X}" for byte in secret.encode()),
    }


def _leaks(secret: str, text: str) -> bool:
    """Whether ``text`` shows ``secret`` in any spelling, partly percent-encoded included
    (werkzeug's own access log decodes some characters of a target and not others)."""
    return any(spelling in text for spelling in _spellings(secret)) or secret in unquote(text)


def test_the_access_log_goes_through_the_redactor(
    aws_env: EmbeddedAWS, caplog: pytest.LogCaptureFixture
) -> None:
    """Every line the server logs, the access log included, is masked: the server's own
    secrets and the host's (the redactor it is given), in any URL spelling."""
    caplog.set_level(logging.INFO)
    host_secret = "aws-secret-key-for-the-log-test"
    redactor = Redactor([host_secret])
    creds = Credentials(token=SPECIAL_TOKEN, username=BASIC[0], password=BASIC[1])
    with serving(creds=creds, redact=redactor) as url:
        for secret in (SPECIAL_TOKEN, BASIC[1], host_secret):
            for spelling in _spellings(secret):
                httpx2.get(
                    f"{url}/Users?access_token={spelling}&x=1",
                    headers={"Authorization": f"Bearer {SPECIAL_TOKEN}"},
                )
        raw(url, f"GET /scim/v2/{quote(SPECIAL_TOKEN, safe='')} HTTP/1.1\nHost: x")
        # a request line the server cannot parse is logged too (answered HTTP/0.9 style)
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
            sock.sendall(f"BAD {SPECIAL_TOKEN} x y z\r\n\r\n".encode())
            while sock.recv(65536):
                pass
    # what the server logged (the HTTP client of this test logs its URLs too)
    text = "\n".join(
        record.getMessage() for record in caplog.records if record.name.startswith("hostsim")
    )
    assert "GET /scim/v2/Users?access_token=" in text
    assert '"BAD **** x y z" 400' in text
    assert MASK in text
    for secret in (SPECIAL_TOKEN, BASIC[1], host_secret):
        assert not _leaks(secret, text), text


def test_hostsim_serve_masks_a_percent_encoded_token_in_its_access_log(aws: EmbeddedAWS) -> None:
    env = {"PATH": "/usr/bin:/bin", **aws.client_env(), "IDHUB_SCIM_TOKEN": SPECIAL_TOKEN}
    with hostsim_serve(env) as served:
        headers = {"Authorization": f"Bearer {SPECIAL_TOKEN}"}
        for spelling in _spellings(SPECIAL_TOKEN):
            ok(httpx2.get(f"{served.url}/Users?token={spelling}", headers=headers))
    out, err = served.out, served.err
    assert "GET /scim/v2/Users?token=" in err, err
    assert not _leaks(SPECIAL_TOKEN, out + err), err
