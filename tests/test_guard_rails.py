"""Guard rails that judge what a policy allows, not what it is called; and the connector's own
tags (``idhub:``, the protection tag), which no attribute may write.

Every channel reaches the plugin through ``Entitlements.check_grantable`` (grant, create with
grants, bulk import's check, SCIM, IDHub's fulfilment) and through the attribute mapping
(create, modify, SCIM, IDHub's push of a mover), so each channel is tried once end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx2
import pytest
from idhub_cli import IDHub
from seeding import ACCOUNT, direct_policies_of, group, groups_of, tags_of, user_names
from test_scim import serving

from hostsim.contract.errors import ConfigurationError, InvalidInput, Refused
from hostsim.contract.model import (
    AccessRequest,
    Account,
    CreateRequest,
    DeleteRequest,
    FetchKind,
    ModifyRequest,
)
from hostsim.embedded_aws import EmbeddedAWS
from hostsim.scim import Credentials
from idhub_aws_plugin import policy_effect
from idhub_aws_plugin.attributes import AttributeMap
from idhub_aws_plugin.connector import AwsIamConnector
from idhub_aws_plugin.settings import load_settings

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

HOSTSIM = str(Path(sys.executable).parent / "hostsim")
ANN = "ann@example.com"
BOSS = "boss@example.com"
AWS_ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
AWS_IAM_FULL = "arn:aws:iam::aws:policy/IAMFullAccess"
EVERYTHING = {"Effect": "Allow", "Action": "*", "Resource": "*"}
#: IAM actions that only read; anything else changes the account.
READS = ("Get", "List", "Simulate")


def doc(*statements: Mapping[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str | list[str], resource: str | list[str] = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


def customer_policy(iam: IAMClient, name: str, document: Mapping[str, Any]) -> str:
    arn: str = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"][
        "Arn"
    ]
    return arn


def inline_group(iam: IAMClient, name: str, document: Mapping[str, Any]) -> str:
    """A group carrying one inline policy ``inline``; returns the group's ARN."""
    arn: str = iam.create_group(GroupName=name)["Group"]["Arn"]
    iam.put_group_policy(GroupName=name, PolicyName="inline", PolicyDocument=json.dumps(document))
    return arn


def writes(aws: EmbeddedAWS) -> list[str]:
    return [action for action in aws.calls() if not action.startswith(READS)]


# --- the judge: what a document allows -------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "finding"),
    [
        (doc(allow("*")), "allows every action"),
        (doc(allow("*:*")), "allows every action"),
        (doc(allow("iam:*")), "allows every IAM action"),
        (doc(allow("IAM:*")), "allows every IAM action"),  # cloudsplaining alone sees nothing
        (doc(allow(["s3:GetObject", "Iam:Put*"])), "iam:PutUserPolicy"),
        (doc(allow("IAM:AttachUserPolicy")), "iam:AttachUserPolicy (attaching managed policies)"),
        (doc(allow("iam:create*")), "iam:CreatePolicyVersion"),
        (doc(allow("iam:CreatePolicyVersion", "arn:aws:iam::*:policy/*")), "new policy versions"),
        (doc(allow("iam:PassRole")), "iam:PassRole (passing roles to services)"),
        (doc(allow("iam:passrole", f"arn:aws:iam::{ACCOUNT}:role/app")), "passing roles"),
        (doc(allow("iam:PassRol?")), "passing roles"),
        (doc(allow("iam:CreateAccessKey", "arn:aws:iam::*:user/*")), "access keys for other"),
        (doc(allow("iam:CreateLoginProfile")), "console passwords of other users"),
        (doc(allow("iam:AddUserToGroup")), "adding users to groups"),
        (doc(allow("iam:DeleteUserPermissionsBoundary")), "permissions boundaries"),
        # other users' credentials, MFA, the deny of a disabled user, the connector's records
        (doc(allow("iam:UpdateAccessKey")), "reactivating access keys of other users"),
        (doc(allow("iam:CreateServiceSpecificCredential")), "service credentials for other"),
        (doc(allow("iam:UploadSSHPublicKey", "arn:aws:iam::*:user/*")), "SSH keys to other"),
        (doc(allow("iam:UploadSigningCertificate")), "signing certificates to other users"),
        (doc(allow(["iam:CreateVirtualMFADevice", "iam:EnableMFADevice"])), "MFA"),
        (doc(allow("iam:DeleteUserPolicy")), "the deny of a disabled user"),
        (doc(allow("iam:Untag*")), "the connector's records"),
        (doc(allow("sts:AssumeRole")), "assuming any role that trusts the account"),
        (doc(allow("STS:Assume*", f"arn:aws:iam::{ACCOUNT}:role/*")), "assuming any role"),
        (doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}), "(NotAction)"),
        (doc({"Effect": "Allow", "NotAction": ["s3:*"], "Resource": "*"}), "(NotAction)"),
        # a deny does not excuse an allow, a condition does not make it safe
        (doc(EVERYTHING, {"Effect": "Deny", "Action": "*", "Resource": "*"}), "every action"),
        (
            doc(
                allow(
                    "iam:AttachUserPolicy",
                    Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}},
                )
            ),
            "iam:AttachUserPolicy",
        ),
        # cloudsplaining's escalations beyond IAM, on every resource
        (doc(allow("lambda:UpdateFunctionCode")), "EditExistingLambdaFunctionWithRole"),
        (doc(allow(["ECS:ExecuteCommand", "ecs:DescribeTasks"])), "ECSExecuteCommand"),
        # a service prefix not in lower case hides a wildcard from cloudsplaining
        (doc(allow("Lambda:Update*")), "EditExistingLambdaFunctionWithRole"),
        (doc(allow(["ECS:Execute*", "ecs:DescribeTasks"])), "ECSExecuteCommand"),
        (
            doc(
                allow("lambda:UpdateFunctionCode"),
                {"Effect": "Deny", "Action": "lambda:UpdateFunctionCode", "Resource": "*"},
            ),
            "EditExistingLambdaFunctionWithRole",
        ),
        (
            doc(
                allow(
                    "lambda:UpdateFunctionCode", Condition={"Bool": {"aws:SecureTransport": "true"}}
                )
            ),
            "EditExistingLambdaFunctionWithRole",
        ),
        # one statement object instead of a list
        ({"Version": "2012-10-17", "Statement": EVERYTHING}, "allows every action"),
    ],
)
def test_the_judge_finds_what_a_document_allows(document: dict[str, Any], finding: str) -> None:
    findings = policy_effect.judge(document)
    assert any(finding in text for text in findings), findings


@pytest.mark.parametrize(
    "document",
    [
        doc(allow("s3:GetObject")),
        doc(allow(["iam:Get*", "iam:List*"])),
        doc(allow("iam:CreateAccessKey", "arn:aws:iam::*:user/${aws:username}")),
        doc(
            allow(
                ["iam:ChangePassword", "iam:*LoginProfile"], "arn:aws:iam::*:user/${aws:username}"
            )
        ),
        doc({"Effect": "Deny", "Action": "*", "Resource": "*"}),
        doc({"Effect": "Allow", "NotAction": "*", "Resource": "*"}),
        # the caller's own credentials and MFA; one named role
        doc(
            allow(
                ["iam:UploadSSHPublicKey", "iam:*ServiceSpecificCredential", "iam:*MFADevice"],
                "arn:aws:iam::*:user/${aws:username}",
            )
        ),
        doc(allow("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/reporting")),
        {"Version": "2012-10-17", "Statement": allow("ec2:Describe*")},
    ],
)
def test_the_judge_lets_through_what_escalates_nothing(document: dict[str, Any]) -> None:
    assert policy_effect.judge(document) == []


def test_a_document_comes_decoded_or_url_encoded() -> None:
    text = json.dumps(doc(EVERYTHING))
    assert policy_effect.document_of(quote(text)) == doc(EVERYTHING)
    assert policy_effect.document_of(text) == doc(EVERYTHING)
    assert policy_effect.document_of(doc(EVERYTHING)) == doc(EVERYTHING)


# --- the connector: every policy an entitlement gives is judged -------------------------------


def test_a_customer_policy_named_administrator_access_is_refused_by_what_it_allows(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    arn = customer_policy(iam, "AdministratorAccess", doc(EVERYTHING))
    connector.create(CreateRequest(ANN))
    aws.clear_calls()
    with pytest.raises(Refused) as caught:
        connector.grant(AccessRequest(ANN, f"policy:{arn}"))
    message = str(caught.value)
    assert message == (
        f"policy:{arn} may not be granted: policy {arn} allows every action; to grant it "
        f"anyway, add '{arn}' to grantable_policies.admit"
    )
    assert writes(aws) == []
    assert {"GetPolicy", "GetPolicyVersion"} <= set(aws.calls())
    assert direct_policies_of(iam, ANN) == set()


def test_a_group_with_an_inline_allow_everything_policy_is_refused(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    group_arn = inline_group(iam, "ops", doc(EVERYTHING))
    connector.create(CreateRequest(ANN))
    aws.clear_calls()
    with pytest.raises(Refused) as caught:
        connector.grant(AccessRequest(ANN, "group:ops"))
    assert str(caught.value) == (
        "group:ops may not be granted: inline policy 'inline' of group ops allows every "
        f"action; to grant it anyway, add '{group_arn}' to grantable_policies.admit"
    )
    assert "\n" not in str(caught.value)
    assert writes(aws) == []
    assert groups_of(iam, ANN) == set()


def test_aws_administrator_and_iam_full_access_are_refused_whatever_the_deny_list(
    aws_env: EmbeddedAWS, iam: IAMClient
) -> None:
    connector = AwsIamConnector.open({"grantable_policies": {"deny": []}})
    group(iam, "iam-admins", AWS_IAM_FULL)
    connector.create(CreateRequest(ANN))
    aws_env.clear_calls()
    with pytest.raises(Refused, match=r"policy .*AdministratorAccess allows every action"):
        connector.grant(AccessRequest(ANN, f"policy:{AWS_ADMIN}"))
    with pytest.raises(
        Refused,
        match=r"policy .*IAMFullAccess \(carried by group iam-admins\) allows every IAM action",
    ):
        connector.grant(AccessRequest(ANN, "group:iam-admins"))
    assert writes(aws_env) == []


def test_a_group_carrying_a_policy_that_passes_roles_is_refused(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    arn = customer_policy(iam, "deployer", doc(allow(["s3:*", "iam:PassRole"])))
    group(iam, "deployers", arn)
    connector.create(CreateRequest(ANN))
    with pytest.raises(Refused) as caught:
        connector.grant(AccessRequest(ANN, "group:deployers"))
    assert (
        f"policy {arn} (carried by group deployers) allows iam:PassRole (passing roles to "
        f"services); to grant it anyway, add '{arn}'" in str(caught.value)
    )
    assert groups_of(iam, ANN) == set()


def test_the_policies_of_a_group_are_also_judged_together(
    connector: AwsIamConnector, iam: IAMClient
) -> None:
    execute = customer_policy(iam, "ecs-exec", doc(allow("ecs:ExecuteCommand")))
    describe = customer_policy(iam, "ecs-describe", doc(allow("ecs:DescribeTasks")))
    group(iam, "ecs-exec", execute)
    group(iam, "ecs-both", execute, describe)
    connector.create(CreateRequest(ANN))
    connector.grant(AccessRequest(ANN, "group:ecs-exec"))  # one half alone is harmless
    with pytest.raises(
        Refused, match=r"group ecs-both \(its policies together\) allows privilege escalation"
    ):
        connector.grant(AccessRequest(ANN, "group:ecs-both"))
    assert groups_of(iam, ANN) == {"ecs-exec"}


def test_common_read_only_policies_stay_grantable(
    connector: AwsIamConnector, iam: IAMClient
) -> None:
    group(iam, "auditors", "arn:aws:iam::aws:policy/SecurityAudit")
    connector.create(CreateRequest(ANN, grants=("group:auditors",)))
    connector.grant(AccessRequest(ANN, "policy:arn:aws:iam::aws:policy/ReadOnlyAccess"))
    assert groups_of(iam, ANN) == {"auditors"}


def test_the_admit_list_admits_a_policy_or_a_group_by_exact_arn(
    aws_env: EmbeddedAWS, iam: IAMClient
) -> None:
    named = customer_policy(iam, "AdministratorAccess", doc(EVERYTHING))
    passer = customer_policy(iam, "passer", doc(allow("iam:PassRole")))
    ops = inline_group(iam, "ops", doc(EVERYTHING))
    inline_group(iam, "ops-and-passer", doc(EVERYTHING))
    iam.attach_group_policy(GroupName="ops-and-passer", PolicyArn=passer)
    connector = AwsIamConnector.open(
        {"grantable_policies": {"admit": [named, ops, f"{ops}-and-passer"]}}
    )
    connector.create(CreateRequest(ANN))
    connector.grant(AccessRequest(ANN, f"policy:{named}"))
    connector.grant(AccessRequest(ANN, "group:ops"))
    # the group's ARN admits its inline policies, not the managed policies it carries
    with pytest.raises(Refused, match=f"policy {passer} \\(carried by group ops-and-passer\\)"):
        connector.grant(AccessRequest(ANN, "group:ops-and-passer"))
    assert direct_policies_of(iam, ANN) == {named}
    assert groups_of(iam, ANN) == {"ops"}


def test_a_judged_grantable_entitlement_is_remembered_briefly(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    group(iam, "developers", customer_policy(iam, "reports", doc(allow("s3:GetObject"))))
    iam.put_group_policy(
        GroupName="developers",
        PolicyName="logs",
        PolicyDocument=json.dumps(doc(allow("logs:Get*"))),
    )
    connector.create(CreateRequest(ANN))
    connector.create(CreateRequest("ben@example.com"))
    aws.clear_calls()
    connector.grant(AccessRequest(ANN, "group:developers"))
    connector.grant(AccessRequest("ben@example.com", "group:developers"))
    calls = aws.calls()
    assert (calls.count("GetPolicyVersion"), calls.count("GetGroupPolicy")) == (1, 1)
    assert calls.count("AddUserToGroup") == 2


@pytest.mark.parametrize(
    ("admit", "fragment"),
    [
        (["arn:aws:iam::123456789012:policy/*"], "has a wildcard"),
        ([f"arn:aws:iam::{ACCOUNT}:group/ops?"], "has a wildcard"),
        (["AdministratorAccess"], "neither a managed policy ARN nor a group ARN"),
        (["arn:aws:iam::aws:group/ops"], "is not a group ARN"),
        ([AWS_ADMIN], "matches grantable_policies.deny"),
    ],
)
def test_admit_takes_exact_arns_only(admit: list[str], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=r"@ \$\.grantable_policies\.admit\[0\]") as caught:
        load_settings({"grantable_policies": {"admit": admit}})
    assert fragment in str(caught.value)
    settings = load_settings(
        {
            "grantable_policies": {
                "deny": [],
                "admit": [AWS_ADMIN, f"arn:aws:iam::{ACCOUNT}:group/a/ops"],
            }
        }
    )
    assert settings.grantable_policies.admit == (AWS_ADMIN, f"arn:aws:iam::{ACCOUNT}:group/a/ops")


# --- every channel, end to end ----------------------------------------------------------------


def hostsim(
    aws: EmbeddedAWS, *args: str, expect: int, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    line = [HOSTSIM, *args] + (["--config", str(config)] if config else [])
    done = subprocess.run(
        line,
        env={"PATH": "/usr/bin:/bin", **aws.client_env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == expect, (done.returncode, done.stdout, done.stderr)
    return done


def test_the_cli_refuses_the_grant_and_the_create_with_the_grant(
    aws: EmbeddedAWS, iam: IAMClient
) -> None:
    inline_group(iam, "ops", doc(EVERYTHING))
    iam.create_user(UserName=ANN, Tags=[{"Key": "Email", "Value": ANN}])
    aws.clear_calls()
    done = hostsim(aws, "grant", ANN, "group:ops", expect=2)
    assert "group:ops may not be granted" in done.stderr
    assert "allows every action" in done.stderr
    done = hostsim(aws, "create", "ben@example.com", "--grant", "group:ops", expect=2)
    assert "group:ops may not be granted" in done.stderr
    assert writes(aws) == []
    assert user_names(iam) == {ANN}
    assert groups_of(iam, ANN) == set()


def test_a_bulk_import_granting_it_is_refused_before_any_change(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    inline_group(iam, "ops", doc(EVERYTHING))
    group(iam, "developers")
    csv = tmp_path / "joiners.csv"
    csv.write_text(
        "email,first_name,last_name,display_name,grants\n"
        "ann@example.com,Ann,,,group:developers\n"
        "ben@example.com,Ben,,,group:ops\n"
    )
    aws.clear_calls()
    done = hostsim(aws, "import", str(csv), expect=2)
    assert "line 3" in done.stderr and "may not be granted" in done.stderr
    assert writes(aws) == []
    assert user_names(iam) == set()


@pytest.fixture
def scim(aws_env: EmbeddedAWS) -> Iterator[httpx2.Client]:
    with (
        serving({}, Credentials(token="guard-rails-token-42")) as url,
        httpx2.Client(
            base_url=url, headers={"Authorization": "Bearer guard-rails-token-42"}, timeout=30
        ) as client,
    ):
        yield client


def test_scim_answers_403_and_changes_nothing(
    scim: httpx2.Client, aws_env: EmbeddedAWS, iam: IAMClient
) -> None:
    named = customer_policy(iam, "AdministratorAccess", doc(EVERYTHING))
    inline_group(iam, "ops", doc(EVERYTHING))
    user = "urn:ietf:params:scim:schemas:core:2.0:User"
    aws_env.clear_calls()
    answer = scim.post(
        "/Users", json={"schemas": [user], "userName": ANN, "entitlements": [{"value": named}]}
    )
    assert answer.status_code == 403, answer.text
    assert "allows every action" in answer.json()["detail"]
    assert user_names(iam) == set()

    iam.create_user(UserName=ANN, Tags=[{"Key": "Email", "Value": ANN}])
    native = iam.get_user(UserName=ANN)["User"]["UserId"]
    ops = next(
        g["id"] for g in scim.get("/Groups").json()["Resources"] if g["displayName"] == "ops"
    )
    aws_env.clear_calls()
    answer = scim.patch(
        f"/Groups/{ops}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": native}]}],
        },
    )
    assert answer.status_code == 403, answer.text
    assert "group:ops may not be granted" in answer.json()["detail"]
    assert writes(aws_env) == []
    assert groups_of(iam, ANN) == set()


@pytest.fixture
def hub(aws: EmbeddedAWS, tmp_path: Path) -> IDHub:
    idhub = IDHub(aws, tmp_path / "state.sqlite3")
    idhub.people(BOSS)
    idhub.run("identity", "add", ANN, "--manager", BOSS, "--first-name", "Ann")
    return idhub


def test_idhub_fulfilment_fails_without_a_write(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    inline_group(iam, "ops", doc(EVERYTHING))
    hub.run("catalog", "sync")
    request = hub.json("request", "submit", "group:ops", "--for", ANN, "--justification", "x")
    aws.clear_calls()
    done = hub.run("request", "approve", str(request["id"]), as_=BOSS, expect=1)
    assert "group:ops may not be granted" in done.stderr
    shown = hub.json("request", "show", str(request["id"]))
    assert shown["status"] == "failed"
    assert "allows every action" in shown["reason"]
    assert writes(aws) == []
    assert user_names(iam) == set()


# --- the connector's own tags: no attribute writes them ---------------------------------------


@pytest.mark.parametrize(
    ("raw", "attribute"),
    [
        ({}, "idhub:protected"),
        ({}, "IDHUB:Protected"),
        ({}, "idhub:anything"),
        ({"protected": {"tag": "BreakGlass"}}, "breakglass"),  # the configured protection tag
    ],
)
def test_no_attribute_writes_the_connectors_own_tags(raw: dict[str, Any], attribute: str) -> None:
    attributes = AttributeMap(load_settings(raw))
    for value in ("true", ""):
        with pytest.raises(InvalidInput, match="no attribute may write it"):
            attributes.create_tags({attribute: value})
        with pytest.raises(InvalidInput, match="no attribute may write it"):
            attributes.modify_changes({attribute: value}, {"Email": ANN, attribute: "x"})


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"attributes": {"marker": {"tag": "idhub:protected"}}}, "idhub:"),
        ({"attributes": {"marker": {"tag": "IDHub:Owner"}}}, "idhub:"),
        (
            {"protected": {"tag": "BreakGlass"}, "attributes": {"marker": {"tag": "breakglass"}}},
            "the protection tag",
        ),
    ],
)
def test_a_mapping_onto_the_connectors_own_tags_is_refused(
    raw: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match=r"\$\.attributes\['marker'\]\.tag: ") as caught:
        load_settings(raw)
    assert fragment in str(caught.value)


def test_the_connector_refuses_writing_its_tags_before_any_write(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    connector.create(CreateRequest(ANN))
    aws.clear_calls()
    with pytest.raises(InvalidInput, match="idhub:"):
        connector.modify(ModifyRequest(ANN, attributes={"IDHUB:protected": "true"}))
    with pytest.raises(InvalidInput, match="idhub:"):
        connector.create(CreateRequest("ben@example.com", attributes={"idhub:protected": "1"}))
    assert writes(aws) == []
    assert "idhub:protected" not in {key.lower() for key in tags_of(iam, ANN)}
    # a leaver is still a leaver
    connector.delete(DeleteRequest(ANN))
    assert user_names(iam) == set()


def test_the_connectors_own_tags_are_not_read_as_attributes(
    connector: AwsIamConnector, iam: IAMClient
) -> None:
    iam.create_user(
        UserName=ANN,
        Tags=[
            {"Key": "Email", "Value": ANN},
            {"Key": "idhub:protected", "Value": ""},
            {"Key": "Team", "Value": "ops"},
        ],
    )
    [row] = [r for r in connector.fetch(FetchKind.USERS) if isinstance(r, Account)]
    assert row.attributes == {"Team": "ops"}


def test_the_cli_refuses_an_attribute_writing_the_protection_tag(
    aws: EmbeddedAWS, iam: IAMClient
) -> None:
    iam.create_user(UserName=ANN, Tags=[{"Key": "Email", "Value": ANN}])
    aws.clear_calls()
    done = hostsim(aws, "modify", ANN, "--attr", "idhub:protected=true", expect=2)
    assert "no attribute may write it" in done.stderr
    hostsim(aws, "create", "ben@example.com", "--attr", "IDHUB:protected=1", expect=2)
    assert writes(aws) == []
    assert tags_of(iam, ANN) == {"Email": ANN}


def test_a_config_mapping_onto_the_protection_tag_stops_the_cli(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    config = tmp_path / "hostsim.toml"
    config.write_text('[aws-iam.attributes.marker]\ntag = "idhub:protected"\n')
    done = hostsim(aws, "create", ANN, "--attr", "marker=x", expect=2, config=config)
    assert "$.attributes['marker'].tag" in done.stderr
    assert user_names(iam) == set()


def test_idhub_keeps_the_identity_when_the_connector_refuses_the_push(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    group(iam, "developers")
    hub.run("catalog", "sync")
    hub.run("catalog", "set", "group:developers", "--approval", "auto")
    hub.run("request", "submit", "group:developers", "--for", ANN, "--justification", "team")
    assert user_names(iam) == {ANN}
    people_before = hub.json("identity", "list")
    audit_before = hub.json("audit")
    aws.clear_calls()

    done = hub.run("identity", "modify", ANN, "--attr", "idhub:protected=true", expect=2)
    assert "no attribute may write it" in done.stderr
    assert hub.json("identity", "list") == people_before
    assert hub.json("audit") == audit_before
    assert writes(aws) == []
    assert "idhub:protected" not in tags_of(iam, ANN)
    # the leaver is not refused
    hub.run("identity", "remove", ANN)
    assert user_names(iam) == set()
