"""Disable and enable: the user stopped at once and losing nothing, then restored exactly."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from seeding import (
    direct_policies_of,
    fully_equipped_user,
    group,
    groups_of,
    policy,
    ssh_public_key,
    tags_of,
    user_names,
)
from test_cli import as_json, hostsim

from hostsim.contract import (
    Account,
    DeleteRequest,
    DisableRequest,
    EnableRequest,
    FetchKind,
    NotFound,
    Refused,
    StepStatus,
    Transient,
)
from hostsim.embedded_aws import EmbeddedAWS
from idhub_aws_plugin.connector import AwsIamConnector
from idhub_aws_plugin.suspension import (
    CONSOLE_DETAIL,
    DENY_DOCUMENT,
    DENY_POLICY,
    RECORD_TAG,
    Record,
)

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import TagTypeDef

ANN = "ann@example.com"
WRITES = {
    "PutUserPolicy",
    "DeleteUserPolicy",
    "TagUser",
    "UntagUser",
    "UpdateAccessKey",
    "UpdateSSHPublicKey",
    "UpdateSigningCertificate",
    "UpdateServiceSpecificCredential",
    "DeleteLoginProfile",
    "CreateLoginProfile",
}


def equipped(iam: IAMClient, name: str = ANN) -> str:
    """A fully equipped user (password, 2 access keys, SSH key, certificate, service
    credential, MFA, inline + direct + group policy); returns the managed policy's ARN."""
    arn = policy(iam, "reports-read")
    group(iam, "developers", arn)
    fully_equipped_user(iam, name, "developers", arn)
    return arn


def statuses(iam: IAMClient, name: str = ANN) -> dict[str, str]:
    """Every credential's id -> status."""
    found: dict[str, str] = {
        k["AccessKeyId"]: k["Status"]
        for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    }
    found |= {
        k["SSHPublicKeyId"]: k["Status"]
        for k in iam.list_ssh_public_keys(UserName=name)["SSHPublicKeys"]
    }
    found |= {
        c["CertificateId"]: c["Status"]
        for c in iam.list_signing_certificates(UserName=name)["Certificates"]
    }
    found |= {
        c["ServiceSpecificCredentialId"]: c["Status"]
        for c in iam.list_service_specific_credentials(UserName=name)["ServiceSpecificCredentials"]
    }
    return found


def has_login_profile(iam: IAMClient, name: str = ANN) -> bool:
    try:
        iam.get_login_profile(UserName=name)
    except iam.exceptions.NoSuchEntityException:
        return False
    return True


def inline_policies(iam: IAMClient, name: str = ANN) -> set[str]:
    return set(iam.list_user_policies(UserName=name)["PolicyNames"])


def decision(iam: IAMClient, action: str = "s3:GetObject", name: str = ANN) -> str:
    """What IAM decides for the user's own request (identity policies, explicit deny wins)."""
    arn = iam.get_user(UserName=name)["User"]["Arn"]
    result = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=[action])
    return str(result["EvaluationResults"][0]["EvalDecision"])


def steps(result: Any) -> dict[str, tuple[StepStatus, str]]:
    return {step.action: (step.status, step.detail) for step in result.steps}


def enabled_of(connector: AwsIamConnector) -> dict[str, bool]:
    rows = connector.fetch(FetchKind.USERS)
    return {row.user_name: row.enabled for row in rows if isinstance(row, Account)}


def writes(aws: EmbeddedAWS) -> list[str]:
    return [call for call in aws.calls() if call in WRITES]


# --- disable -----------------------------------------------------------------------------


def test_disable_stops_a_fully_equipped_user_and_keeps_everything_else(
    aws_env: EmbeddedAWS, iam: IAMClient, connector: AwsIamConnector
) -> None:
    arn = equipped(iam)
    assert decision(iam) == "allowed"  # through its group, direct and inline policies
    mfa_before = iam.list_mfa_devices(UserName=ANN)["MFADevices"]
    credentials = statuses(iam)
    assert len(credentials) == 5 and set(credentials.values()) == {"Active"}
    aws_env.clear_calls()

    result = connector.disable(DisableRequest(ANN))
    sent = aws_env.calls()

    assert result.changed
    assert all(step.status is StepStatus.DONE for step in result.steps), result.steps
    assert [step.action for step in result.steps] == [
        "deny every action",
        "record what is deactivated",
        "deactivate access keys",
        "deactivate SSH public keys",
        "deactivate signing certificates",
        "deactivate service-specific credentials",
        "delete login profile",
    ]
    # stopped: the deny is in place (and wins over every allow), nothing can sign in
    document = iam.get_user_policy(UserName=ANN, PolicyName=DENY_POLICY)["PolicyDocument"]
    assert document == DENY_DOCUMENT
    assert decision(iam) == "explicitDeny"
    assert decision(iam, "iam:ListUsers") == "explicitDeny"
    assert set(statuses(iam).values()) == {"Inactive"}
    assert set(statuses(iam)) == set(credentials)  # deactivated, none deleted
    assert not has_login_profile(iam)
    # nothing else lost
    assert groups_of(iam, ANN) == {"developers"}
    assert direct_policies_of(iam, ANN) == {arn}
    assert inline_policies(iam) == {"inline", DENY_POLICY}
    assert iam.list_mfa_devices(UserName=ANN)["MFADevices"] == mfa_before
    record = Record.read(tags_of(iam, ANN))
    assert record is not None and record.login
    assert {item for _code, item in record.items} == set(credentials)
    # the figures: 7 reads, then 1 deny + 1 record + 5 deactivations + 1 password
    assert sent == [
        "GetUser",
        "ListUserPolicies",
        "ListAccessKeys",
        "ListSSHPublicKeys",
        "ListSigningCertificates",
        "ListServiceSpecificCredentials",
        "GetLoginProfile",
        "PutUserPolicy",
        "TagUser",
        "UpdateAccessKey",
        "UpdateAccessKey",
        "UpdateSSHPublicKey",
        "UpdateSigningCertificate",
        "UpdateServiceSpecificCredential",
        "DeleteLoginProfile",
    ]


def test_enable_restores_exactly_what_disable_stopped(
    aws_env: EmbeddedAWS, iam: IAMClient, connector: AwsIamConnector
) -> None:
    equipped(iam)
    keys = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=ANN)["AccessKeyMetadata"]]
    iam.update_access_key(UserName=ANN, AccessKeyId=keys[0], Status="Inactive")
    before = statuses(iam)
    tags_before = tags_of(iam, ANN)
    connector.disable(DisableRequest(ANN))
    record = Record.read(tags_of(iam, ANN))
    assert record is not None and ("k", keys[0]) not in record.items  # it was not active
    aws_env.clear_calls()

    result = connector.enable(EnableRequest(ANN))
    sent = aws_env.calls()

    assert statuses(iam) == before  # the key inactive before the disable stays inactive
    assert before[keys[0]] == "Inactive" and before[keys[1]] == "Active"
    assert inline_policies(iam) == {"inline"}
    assert tags_of(iam, ANN) == tags_before  # the record is gone, nothing else changed
    assert decision(iam) == "allowed"
    assert steps(result)["console access"] == (StepStatus.SKIPPED, CONSOLE_DETAIL)
    assert not has_login_profile(iam)  # the connector never sets passwords
    assert [step.action for step in result.steps][-3:] == [
        "remove the record",
        "remove the deny",
        "console access",
    ]
    # 6 reads, then 4 reactivations (not the pre-inactive key), untag, deny removed
    assert sent == [
        "GetUser",
        "ListUserPolicies",
        "ListAccessKeys",
        "ListSSHPublicKeys",
        "ListSigningCertificates",
        "ListServiceSpecificCredentials",
        "UpdateAccessKey",
        "UpdateSSHPublicKey",
        "UpdateSigningCertificate",
        "UpdateServiceSpecificCredential",
        "UntagUser",
        "DeleteUserPolicy",
    ]


def test_repeats_send_no_write(
    aws_env: EmbeddedAWS, iam: IAMClient, connector: AwsIamConnector
) -> None:
    equipped(iam)
    connector.disable(DisableRequest(ANN))
    aws_env.clear_calls()
    again = connector.disable(DisableRequest(ANN))
    assert not again.changed
    assert {step.status for step in again.steps} == {StepStatus.UNCHANGED}
    assert writes(aws_env) == []
    assert "GetUserPolicy" in aws_env.calls()  # the deny's document is checked, not assumed

    connector.enable(EnableRequest(ANN))
    aws_env.clear_calls()
    again = connector.enable(EnableRequest(ANN))
    assert not again.changed
    assert writes(aws_env) == []
    assert aws_env.calls() == ["GetUser", "ListUserPolicies"]


def test_a_tampered_deny_is_restored_by_disable(
    aws_env: EmbeddedAWS, iam: IAMClient, connector: AwsIamConnector
) -> None:
    iam.create_user(UserName=ANN)
    connector.disable(DisableRequest(ANN))
    allow = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
    iam.put_user_policy(UserName=ANN, PolicyName=DENY_POLICY, PolicyDocument=allow)
    result = connector.disable(DisableRequest(ANN))
    assert steps(result)["deny every action"][0] is StepStatus.DONE
    document = iam.get_user_policy(UserName=ANN, PolicyName=DENY_POLICY)["PolicyDocument"]
    assert document == DENY_DOCUMENT


OPERATIONS = {
    "disable": lambda c, email: c.disable(DisableRequest(email)),
    "enable": lambda c, email: c.enable(EnableRequest(email)),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_protected_and_out_of_path_users_are_refused_with_no_write(
    aws_env: EmbeddedAWS, iam: IAMClient, operation: str
) -> None:
    iam.create_user(UserName="breakglass@example.com", Path="/idhub/")
    iam.create_user(
        UserName="svc@example.com", Path="/idhub/", Tags=[{"Key": "idhub:protected", "Value": ""}]
    )
    iam.create_user(UserName="outside@example.com", Path="/legacy/")
    for name in ("breakglass@example.com", "svc@example.com", "outside@example.com"):
        iam.create_access_key(UserName=name)
        iam.put_user_policy(
            UserName=name, PolicyName=DENY_POLICY, PolicyDocument=json.dumps(DENY_DOCUMENT)
        )
    connector = AwsIamConnector.open(
        {"user_path": "/idhub/", "protected": {"users": ["BreakGlass@example.com"]}}
    )
    aws_env.clear_calls()
    for email, reason in (
        ("breakglass@example.com", "protected"),
        ("svc@example.com", "tagged idhub:protected"),
        ("outside@example.com", "outside the connector's path /idhub/"),
    ):
        with pytest.raises(Refused, match=reason) as refused:
            OPERATIONS[operation](connector, email)
        assert refused.value.steps == ()
    assert writes(aws_env) == []
    assert set(aws_env.calls()) == {"GetUser"}


def test_no_such_account_is_not_found(connector: AwsIamConnector) -> None:
    with pytest.raises(NotFound):
        connector.disable(DisableRequest("nobody@example.com"))
    with pytest.raises(NotFound):
        connector.enable(EnableRequest("nobody@example.com"))


# --- crash safety ------------------------------------------------------------------------


def test_a_disable_interrupted_halfway_is_finished_by_a_rerun_and_enable_restores_exactly(
    aws_env: EmbeddedAWS, iam: IAMClient, connector: AwsIamConnector, fast_backoff: list[float]
) -> None:
    equipped(iam)
    keys = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=ANN)["AccessKeyMetadata"]]
    iam.update_access_key(UserName=ANN, AccessKeyId=keys[1], Status="Inactive")
    before = statuses(iam)
    aws_env.fail_next("UpdateSSHPublicKey", code="ServiceUnavailable", status=503, times=99)

    with pytest.raises(Transient) as failed:
        connector.disable(DisableRequest(ANN))

    reported = {step.action: step.status for step in failed.value.steps}
    assert reported["deny every action"] is StepStatus.DONE
    assert reported["record what is deactivated"] is StepStatus.DONE
    assert reported["deactivate access keys"] is StepStatus.DONE
    assert reported["deactivate SSH public keys"] is StepStatus.FAILED
    assert reported["delete login profile"] is StepStatus.PENDING
    assert decision(iam) == "explicitDeny"  # stopped although the disable failed
    assert has_login_profile(iam)
    aws_env.reset_faults()

    # meanwhile an administrator uploads a new key: active now, so the rerun records it too
    new_key = iam.upload_ssh_public_key(UserName=ANN, SSHPublicKeyBody=ssh_public_key())[
        "SSHPublicKey"
    ]["SSHPublicKeyId"]
    rerun = connector.disable(DisableRequest(ANN))
    assert steps(rerun)["deny every action"][0] is StepStatus.UNCHANGED
    assert steps(rerun)["deactivate SSH public keys"][0] is StepStatus.DONE
    assert set(statuses(iam).values()) == {"Inactive"}
    assert not has_login_profile(iam)

    connector.enable(EnableRequest(ANN))
    assert statuses(iam) == {**before, new_key: "Active"}
    assert statuses(iam)[keys[1]] == "Inactive"
    assert inline_policies(iam) == {"inline"}
    assert RECORD_TAG not in tags_of(iam, ANN)


def test_a_disable_that_could_not_record_is_stopped_and_finished_by_a_rerun(
    aws_env: EmbeddedAWS, iam: IAMClient, connector: AwsIamConnector, fast_backoff: list[float]
) -> None:
    equipped(iam)
    before = statuses(iam)
    aws_env.fail_next("TagUser", code="ServiceUnavailable", status=503, times=99)
    with pytest.raises(Transient) as failed:
        connector.disable(DisableRequest(ANN))
    reported = {step.action: step.status for step in failed.value.steps}
    assert reported["deny every action"] is StepStatus.DONE
    assert reported["deactivate access keys"] is StepStatus.PENDING
    assert statuses(iam) == before  # nothing deactivated without a record
    assert decision(iam) == "explicitDeny"
    aws_env.reset_faults()

    connector.disable(DisableRequest(ANN))
    assert set(statuses(iam).values()) == {"Inactive"}
    connector.enable(EnableRequest(ANN))
    assert statuses(iam) == before


def test_an_enable_interrupted_keeps_the_deny_until_a_rerun_finishes(
    aws_env: EmbeddedAWS, iam: IAMClient, connector: AwsIamConnector, fast_backoff: list[float]
) -> None:
    equipped(iam)
    before = statuses(iam)
    connector.disable(DisableRequest(ANN))
    aws_env.fail_next("DeleteUserPolicy", code="ServiceUnavailable", status=503, times=99)
    with pytest.raises(Transient):
        connector.enable(EnableRequest(ANN))
    assert statuses(iam) == before
    assert RECORD_TAG not in tags_of(iam, ANN)
    assert DENY_POLICY in inline_policies(iam)
    assert enabled_of(connector) == {ANN: False}  # still denied: fetch says so
    aws_env.reset_faults()

    rerun = connector.enable(EnableRequest(ANN))
    assert steps(rerun)["remove the deny"][0] is StepStatus.DONE
    assert inline_policies(iam) == {"inline"}
    assert statuses(iam) == before


def test_a_record_iam_could_not_store_is_refused_before_any_change(
    aws_env: EmbeddedAWS, iam: IAMClient, connector: AwsIamConnector
) -> None:
    tags: list[TagTypeDef] = [{"Key": f"t{i}", "Value": "x"} for i in range(50)]
    iam.create_user(UserName=ANN, Tags=tags)
    iam.create_access_key(UserName=ANN)
    aws_env.clear_calls()
    with pytest.raises(Refused, match="IAM allows 50") as refused:
        connector.disable(DisableRequest(ANN))
    assert refused.value.steps == ()
    assert writes(aws_env) == []
    assert set(statuses(iam).values()) == {"Active"}


def test_a_long_record_spans_several_tags_within_iams_rules() -> None:
    items = frozenset(("k", f"AKIA{i:016d}") for i in range(30))
    record = Record(items, login=True)
    tags = record.tags()
    assert len(tags) > 1 and RECORD_TAG in tags
    assert all(len(value) <= 256 for value in tags.values())
    assert Record.read({**tags, "Email": "ann@example.com"}) == record
    assert Record.read({"Email": "ann@example.com"}) is None


def test_a_user_with_many_ssh_keys_is_recorded_and_restored(
    aws_env: EmbeddedAWS, iam: IAMClient, connector: AwsIamConnector
) -> None:
    iam.create_user(UserName=ANN)
    for _ in range(5):  # IAM's quota
        iam.upload_ssh_public_key(UserName=ANN, SSHPublicKeyBody=ssh_public_key())
    iam.create_access_key(UserName=ANN)
    iam.create_access_key(UserName=ANN)
    connector.disable(DisableRequest(ANN))
    assert set(statuses(iam).values()) == {"Inactive"}
    assert Record.read(tags_of(iam, ANN)) is not None
    connector.enable(EnableRequest(ANN))
    assert set(statuses(iam).values()) == {"Active"}


# --- with the rest of the lifecycle --------------------------------------------------------


def test_a_disabled_user_can_be_deleted(
    aws_env: EmbeddedAWS, iam: IAMClient, connector: AwsIamConnector
) -> None:
    equipped(iam)
    connector.disable(DisableRequest(ANN))
    result = connector.delete(DeleteRequest(ANN))
    assert steps(result)["delete inline policies"] == (StepStatus.DONE, "2 removed")
    assert steps(result)["delete login profile"][0] is StepStatus.UNCHANGED
    assert ANN not in user_names(iam)


def test_fetch_users_says_which_accounts_are_enabled(
    aws_env: EmbeddedAWS, iam: IAMClient, connector: AwsIamConnector
) -> None:
    iam.create_user(UserName=ANN)
    iam.create_user(UserName="bob@example.com")
    connector.disable(DisableRequest(ANN))
    assert enabled_of(connector) == {ANN: False, "bob@example.com": True}
    connector.enable(EnableRequest(ANN))
    assert enabled_of(connector) == {ANN: True, "bob@example.com": True}


def test_disable_and_enable_through_the_cli(aws: EmbeddedAWS, iam: IAMClient) -> None:
    equipped(iam)
    iam.create_user(UserName="svc@example.com", Tags=[{"Key": "idhub:protected", "Value": ""}])

    disabled = as_json(hostsim(aws, "disable", ANN, "--json"))
    assert disabled["changed"] is True
    assert disabled["operation"] == "disable"
    assert set(statuses(iam).values()) == {"Inactive"}
    again = hostsim(aws, "disable", ANN)
    assert again.stdout.startswith(f"disable {ANN} (id ")
    assert ": unchanged" in again.stdout.splitlines()[0]

    users = {u["user_name"]: u for u in as_json(hostsim(aws, "fetch", "users", "--json"))}
    assert (users[ANN]["enabled"], users["svc@example.com"]["enabled"]) == (False, True)
    table = hostsim(aws, "fetch", "users").stdout.splitlines()
    assert "ENABLED" in table[0].split()
    assert [line.split()[-2] for line in table[1:-1]] == ["false", "true"]

    enabled = as_json(hostsim(aws, "enable", ANN, "--json"))
    assert enabled["changed"] is True
    console = [s for s in enabled["steps"] if s["action"] == "console access"]
    assert console == [
        {
            "action": "console access",
            "target": ANN,
            "status": "skipped",
            "detail": CONSOLE_DETAIL,
        }
    ]
    assert set(statuses(iam).values()) == {"Active"}

    aws.clear_calls()
    refused = hostsim(aws, "disable", "svc@example.com", expect=2)
    assert "protected" in refused.stderr
    assert writes(aws) == []
    missing = hostsim(aws, "enable", "nobody@example.com", expect=2)
    assert "no account for nobody@example.com" in missing.stderr

    schema = as_json(hostsim(aws, "schema", "--json"))
    assert "enabled" in schema["account_status"]


def test_a_lost_reply_is_met_by_its_retry_and_reported_done(
    aws_env: EmbeddedAWS, iam: IAMClient, connector: AwsIamConnector, fast_backoff: list[float]
) -> None:
    iam.create_user(UserName=ANN)
    iam.create_login_profile(UserName=ANN, Password="Test-only-Passw0rd!")
    aws_env.fail_next("DeleteLoginProfile", code="ServiceUnavailable", status=503, lose_reply=True)
    result = connector.disable(DisableRequest(ANN))
    status, detail = steps(result)["delete login profile"]
    assert (status, "first answer was lost" in detail) == (StepStatus.DONE, True)
    assert not has_login_profile(iam)
    assert aws_env.calls().count("DeleteLoginProfile") == 2
