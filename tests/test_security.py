"""Security: least privilege, scope, protected accounts, grantable policies, secrets."""

from __future__ import annotations

import datetime
import io
import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.credentials import DeferredRefreshableCredentials
from policy_audit import CONNECTOR_ACTIONS, ActionLog
from seeding import document, group, user_names

from hostsim.contract.errors import ConfigurationError, Refused
from hostsim.contract.model import (
    AccessRequest,
    CreateRequest,
    DeleteRequest,
    FetchKind,
    ModifyRequest,
)
from hostsim.embedded_aws import Call, EmbeddedAWS
from hostsim.redaction import MASK, RedactingFilter, RedactingStream, Redactor, from_environment
from idhub_aws_plugin import permissions
from idhub_aws_plugin.client import USER_AGENT, AwsClients
from idhub_aws_plugin.connector import AwsIamConnector
from idhub_aws_plugin.scope import Scope
from idhub_aws_plugin.settings import load_settings

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
ROLE = "arn:aws:iam::123456789012:role/idhub-connector"


# --- the shipped policy ---------------------------------------------------------------------


def test_the_shipped_policy_grants_no_wildcard_action() -> None:
    actions = permissions.required_actions()
    assert "iam:CreateUser" in actions
    assert not [action for action in actions if "*" in action]


def test_only_account_level_reads_use_every_resource() -> None:
    for statement in permissions.shipped_policy()["Statement"]:
        if statement["Resource"] == "*":
            assert all(
                action.split(":")[1].startswith(("Get", "List", "Simulate"))
                for action in statement["Action"]
            ), statement["Sid"]


def test_the_policy_is_narrowed_to_the_path_account_and_role() -> None:
    settings = load_settings({"user_path": "/idhub/", "assume_role": {"role_arn": ROLE}})
    rendered = permissions.render_policy(settings, account="123456789012")
    by_sid = {statement["Sid"]: statement for statement in rendered["Statement"]}
    assert by_sid["ManageUsersUnderThePath"]["Resource"] == "arn:aws:iam::123456789012:user/idhub/*"
    assert by_sid["CheckTheConnectorsOwnPermissions"]["Resource"] == ROLE
    assert permissions.shipped_policy()["Statement"][1]["Resource"] == "arn:aws:iam::*:user/*"


# --- grantable policies -----------------------------------------------------------------------


def test_administrator_access_is_denied_by_default_and_can_be_allowed() -> None:
    with pytest.raises(Refused, match=r"grantable_policies\.deny"):
        Scope(load_settings({})).check_policy(ADMIN)
    Scope(load_settings({"grantable_policies": {"deny": []}})).check_policy(ADMIN)


def test_an_allow_list_limits_what_may_be_granted() -> None:
    scope = Scope(
        load_settings({"grantable_policies": {"allow": ["arn:aws:iam::*:policy/team/*"]}})
    )
    scope.check_policy("arn:aws:iam::123456789012:policy/team/reports")
    with pytest.raises(Refused, match=r"no grantable_policies\.allow pattern"):
        scope.check_policy(READ_ONLY)


def test_a_group_carrying_a_denied_policy_is_refused() -> None:
    with pytest.raises(Refused, match="carried by group admins"):
        Scope(load_settings({})).check_group("admins", [READ_ONLY, ADMIN])


def test_granting_administrator_access_changes_nothing(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    group(iam, "admins", ADMIN)
    connector.create(CreateRequest("amy@example.com"))
    for entitlement in (f"policy:{ADMIN}", "group:admins"):
        with pytest.raises(Refused, match="AdministratorAccess"):
            connector.grant(AccessRequest("amy@example.com", entitlement))
    with pytest.raises(Refused):
        connector.create(CreateRequest("ben@example.com", grants=("group:admins",)))
    assert not {"AttachUserPolicy", "AddUserToGroup"} & set(aws.calls())
    assert user_names(iam) == {"amy@example.com"}


# --- protected accounts and path scope --------------------------------------------------------


PROTECTING = {
    "user_path": "/idhub/",
    "protected": {"users": ["breakglass"], "paths": ["/idhub/admins/"]},
}


@pytest.mark.parametrize(
    ("name", "path", "tags", "fragment"),
    [
        ("BreakGlass", "/idhub/", {}, r"protected\.users"),
        ("ops", "/idhub/admins/", {}, "protected path /idhub/admins/"),
        ("svc", "/idhub/", {"IDHUB:Protected": "yes"}, "tagged idhub:protected"),
        ("eve", "/other/", {}, "outside the connector's path /idhub/"),
    ],
)
def test_protected_and_out_of_scope_users_are_refused(
    name: str, path: str, tags: dict[str, str], fragment: str
) -> None:
    scope = Scope(load_settings(PROTECTING))
    scope.check_user("fine", "/idhub/people/", {"Team": "x"})
    with pytest.raises(Refused, match=fragment):
        scope.check_user(name, path, tags)


# --- connection -------------------------------------------------------------------------------


def test_assume_role_settings_are_validated() -> None:
    with pytest.raises(ConfigurationError, match=r"@ \$\.assume_role\.role_arn"):
        load_settings({"assume_role": {"role_arn": "idhub-connector"}})
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"assume_role": {"role_arn": ROLE, "external_id": "bad id with spaces"}})
    assert "bad id with spaces" not in str(caught.value)


def test_the_connector_runs_as_the_assumed_role_and_refreshes_it(
    aws_env: EmbeddedAWS, iam: IAMClient
) -> None:
    iam.create_role(RoleName="idhub-connector", AssumeRolePolicyDocument=document("sts:AssumeRole"))
    connector = AwsIamConnector.open(
        {"assume_role": {"role_arn": ROLE, "external_id": "tenant-42", "duration_seconds": 3600}}
    )
    status = connector.test()
    assert status.identity == (
        "arn:aws:sts::123456789012:assumed-role/idhub-connector/idhub-aws-iam"
    )
    assert aws_env.calls("sts").count("AssumeRole") == 1

    credentials = connector._clients.iam._request_signer._credentials  # type: ignore[attr-defined]
    assert isinstance(credentials, DeferredRefreshableCredentials)
    # as if the hour had passed: the credentials expire and the fetcher's cached STS answer too
    credentials._expiry_time = datetime.datetime.now(datetime.UTC)  # type: ignore[attr-defined]
    credentials._refresh_using.__self__._cache.clear()  # type: ignore[attr-defined]
    list(connector.fetch(FetchKind.GROUPS))
    assert aws_env.calls("sts").count("AssumeRole") == 2


# --- secrets ----------------------------------------------------------------------------------


def test_the_redactor_masks_every_known_secret() -> None:
    redact = from_environment(
        {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG", "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2Vj"}
    )
    redact.add_settings(
        {"aws-iam": {"assume_role": {"external_id": "tenant-4242"}}, "x": "visible"}
    )
    text = "key wJalrXUtnFEMI/K7MDENG token IQoJb3JpZ2luX2Vj id tenant-4242 visible"
    assert redact(text) == f"key {MASK} token {MASK} id {MASK} visible"


def test_short_values_are_not_treated_as_secrets() -> None:
    assert Redactor(["abc"])("abc") == "abc"


def test_streams_and_logs_are_redacted() -> None:
    redact = Redactor(["s3cr3t-value"])
    buffer = io.StringIO()
    RedactingStream(buffer, redact).write("leaked s3cr3t-value?\n")
    assert buffer.getvalue() == f"leaked {MASK}?\n"

    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "failed with %s", ("s3cr3t-value",), None
    )
    try:
        raise RuntimeError("boom s3cr3t-value")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    RedactingFilter(redact).filter(record)
    assert "s3cr3t-value" not in logging.Formatter().format(record)
    assert json.dumps(record.msg) == json.dumps(f"failed with {MASK}")


# --- the policy, proven against what the connector sends --------------------------------------


def test_the_session_records_the_connectors_actions_and_only_those(
    connector: AwsIamConnector, iam: IAMClient
) -> None:
    iam.create_role(RoleName="not-the-connector", AssumeRolePolicyDocument=document())
    connector.create(CreateRequest("cal@example.com"))
    assert {"iam:CreateUser", "iam:GetUser"} <= CONNECTOR_ACTIONS.seen
    assert "iam:CreateRole" not in CONNECTOR_ACTIONS.seen  # the test's own call


def test_an_action_outside_the_policy_would_fail_the_session() -> None:
    log = ActionLog()
    log(Call("iam", "CreateRole", None, f"Boto3/1 {USER_AGENT}"))
    log(Call("iam", "CreateUser", None, f"Boto3/1 {USER_AGENT}"))
    log(Call("iam", "DeleteRole", None, "Boto3/1 someone-else"))
    assert log.not_allowed() == ["iam:CreateRole"]


def _connector_as(aws: EmbeddedAWS, iam: IAMClient, policy_document: str) -> AwsIamConnector:
    """The connector running as its own IAM user, whose only permissions are the document."""
    iam.create_user(UserName="idhub-connector")
    iam.put_user_policy(
        UserName="idhub-connector", PolicyName="connector", PolicyDocument=policy_document
    )
    key = iam.create_access_key(UserName="idhub-connector")["AccessKey"]
    settings = load_settings({"endpoint_url": aws.endpoint_url, "region": "us-east-1"})
    session = boto3.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    return AwsIamConnector(settings, AwsClients(settings, session=session))


def test_the_connection_check_confirms_the_shipped_policy(aws: EmbeddedAWS, iam: IAMClient) -> None:
    connector = _connector_as(aws, iam, json.dumps(permissions.shipped_policy()))
    status = connector.test()
    assert status.identity == "arn:aws:iam::123456789012:user/idhub-connector"
    assert (status.ok, status.permissions_checked, status.missing_permissions) == (True, True, ())
    assert "every permission of iam-policy.json is granted" in status.message


def test_the_connection_check_names_missing_permissions_and_changes_nothing(
    aws: EmbeddedAWS, iam: IAMClient
) -> None:
    policy_document = permissions.shipped_policy()
    trimmed = json.loads(json.dumps(policy_document))
    trimmed["Statement"][1]["Action"].remove("iam:DeleteUser")
    connector = _connector_as(aws, iam, json.dumps(trimmed))
    aws.clear_calls()
    status = connector.test()
    assert (status.ok, status.missing_permissions) == (False, ("iam:DeleteUser",))
    assert set(aws.calls()) <= {"GetAccountSummary", "SimulatePrincipalPolicy"}


OPERATIONS: dict[str, Callable[[AwsIamConnector, str], object]] = {
    "modify": lambda c, email: c.modify(ModifyRequest(email, first_name="X")),
    "delete": lambda c, email: c.delete(DeleteRequest(email)),
    "grant": lambda c, email: c.grant(AccessRequest(email, "group:developers")),
    "revoke": lambda c, email: c.revoke(AccessRequest(email, "group:developers")),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_protected_and_out_of_path_accounts_are_never_changed(
    aws_env: EmbeddedAWS, iam: IAMClient, operation: str
) -> None:
    group(iam, "developers")
    iam.create_user(UserName="breakglass@example.com", Path="/idhub/")
    iam.create_user(
        UserName="svc@example.com", Path="/idhub/", Tags=[{"Key": "idhub:protected", "Value": ""}]
    )
    iam.create_user(UserName="outside@example.com", Path="/legacy/")
    for name in ("breakglass@example.com", "svc@example.com", "outside@example.com"):
        iam.add_user_to_group(GroupName="developers", UserName=name)
    connector = AwsIamConnector.open(
        {"user_path": "/idhub/", "protected": {"users": ["BreakGlass@example.com"]}}
    )
    aws_env.clear_calls()
    for email, reason in (
        ("breakglass@example.com", "protected"),
        ("svc@example.com", "tagged idhub:protected"),
        ("outside@example.com", "outside the connector's path /idhub/"),
    ):
        with pytest.raises(Refused, match=reason):
            OPERATIONS[operation](connector, email)
    writes = {"TagUser", "UntagUser", "DeleteUser", "AddUserToGroup", "RemoveUserFromGroup"}
    assert not writes & set(aws_env.calls())
    assert len(user_names(iam)) == 3


def test_users_are_created_under_the_path_and_protected_names_are_refused(
    aws_env: EmbeddedAWS, iam: IAMClient
) -> None:
    connector = AwsIamConnector.open(
        {"user_path": "/idhub/", "protected": {"users": ["root@example.com"]}}
    )
    connector.create(CreateRequest("new@example.com"))
    assert iam.get_user(UserName="new@example.com")["User"]["Path"] == "/idhub/"
    with pytest.raises(Refused, match="protected"):
        connector.create(CreateRequest("root@example.com"))
    assert user_names(iam) == {"new@example.com"}


# --- secrets, end to end ----------------------------------------------------------------------

HOSTSIM = str(Path(sys.executable).parent / "hostsim")
ACCESS_KEY = "AKIAIDHUBMARKER00001"
SECRET_KEY = "idhub-secret-marker-wJalrXUtnFEMIK7MDENG"
SESSION_TOKEN = "idhub-token-marker-IQoJb3JpZ2luX2VjEJr"
EXTERNAL_ID = "idhub-external-marker-4242"


def test_no_secret_appears_in_anything_the_cli_produces(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    iam.create_role(RoleName="idhub-connector", AssumeRolePolicyDocument=document("sts:AssumeRole"))
    group(iam, "developers")
    config = tmp_path / "idhub.toml"
    config.write_text(
        f'[aws-iam.assume_role]\nrole_arn = "{ROLE}"\nexternal_id = "{EXTERNAL_ID}"\n'
    )
    env = {
        **aws.subprocess_env({"PATH": "/usr/bin:/bin"}),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
    }
    # an AWS error echoing the caller's credentials, as some services' errors do
    aws.fail_next(
        "AddUserToGroup",
        code="AccessDenied",
        status=403,
        message=f"key {ACCESS_KEY} token {SESSION_TOKEN} external id {EXTERNAL_ID} denied",
    )
    produced = []
    for args in (
        ["test", "--json"],
        ["create", "sam@example.com", "--grant", "group:developers", "--json"],
        ["create", "sam@example.com", "--grant", "group:developers"],
        ["fetch", "users", "--json"],
        ["grant", "nobody@example.com", "group:developers"],
        ["modify", "sam@example.com", "--first-name", "bad;value"],
        ["schema", "--json"],
        ["permissions"],
    ):
        done = subprocess.run(
            [HOSTSIM, "--debug", "--config", str(config), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        produced.append(done.stdout + done.stderr)
    everything = "\n".join(produced)
    assert "AccessDenied" in everything  # the echoing error was printed, masked
    assert "assumed-role/idhub-connector" in everything  # the assumed role was used
    for secret in (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, EXTERNAL_ID):
        assert secret not in everything
    assert MASK in everything


def test_the_readme_shows_the_shipped_policy() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(block) == permissions.shipped_policy()


def test_the_permissions_command_prints_the_policy_for_the_settings(tmp_path: Path) -> None:
    config = tmp_path / "idhub.toml"
    config.write_text('[aws-iam]\nuser_path = "/idhub/"\n')
    done = subprocess.run(
        [HOSTSIM, "permissions", "--config", str(config)],
        env={"PATH": "/usr/bin:/bin", "AWS_CONFIG_FILE": "/dev/null"},  # no credentials needed
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    printed = json.loads(done.stdout)
    resources = {str(statement["Resource"]) for statement in printed["Statement"]}
    assert "arn:aws:iam::*:user/idhub/*" in resources
    printed_actions = {a for s in printed["Statement"] for a in s["Action"]}
    group_management = {"iam:CreateGroup", "iam:DeleteGroup", "iam:DetachGroupPolicy"}
    # group management is off by default, and so are its actions
    assert printed_actions == permissions.required_actions() - {
        *group_management,
        "iam:DeleteGroupPolicy",
    }
    # the guard rails read what a group or policy allows whatever the settings
    assert {"iam:GetPolicyVersion", "iam:ListGroupPolicies", "iam:GetGroupPolicy"} <= (
        printed_actions
    )
    enabled = permissions.render_policy(load_settings({"manage_groups": True}))
    assert group_management <= {a for s in enabled["Statement"] for a in s["Action"]}
