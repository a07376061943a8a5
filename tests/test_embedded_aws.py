"""The embedded AWS behaves like IAM where moto alone does not, and its test controls work.

Every fidelity test uses plain boto3 against the running server and fails if the rule is
taken out of the middleware: it asserts the error code IAM returns and, where the request
would have changed something, that nothing changed.
"""

from __future__ import annotations

import datetime
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from hostsim.embedded_aws import EmbeddedAWS

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import TagTypeDef

POLICY_DOCUMENT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
)
SSH_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCtest embedded-aws-test"
READ_ONLY_ACCESS = "arn:aws:iam::aws:policy/ReadOnlyAccess"


# -- helpers -------------------------------------------------------------------------------


def error_of(call: Callable[[], object]) -> tuple[str, int]:
    """Run a call that must fail; return IAM's error code and the HTTP status."""
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def error_message(call: Callable[[], object]) -> str:
    """Run a call that must fail; return IAM's error message."""
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Message"]


def no_retry_iam(aws: EmbeddedAWS) -> IAMClient:
    """A client that does not retry, so a retryable injected fault reaches the test."""
    return aws.iam_client(Config(retries={"total_max_attempts": 1}))


def tag_list(tags: dict[str, str]) -> list[TagTypeDef]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def user_names(iam: IAMClient) -> list[str]:
    return [user["UserName"] for user in iam.list_users()["Users"]]


def tags_of(iam: IAMClient, user_name: str) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in iam.list_user_tags(UserName=user_name)["Tags"]}


def new_policy(iam: IAMClient, name: str) -> str:
    return iam.create_policy(PolicyName=name, PolicyDocument=POLICY_DOCUMENT)["Policy"]["Arn"]


def certificate_pem() -> str:
    """A self-signed certificate (moto checks that signing certificates parse)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "embedded-aws-test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(Encoding.PEM).decode()


# -- rule 1: DeleteUser refuses while anything is attached ---------------------------------

#: Gives the user one dependent; returns the call that removes it again.
Attach = Callable[["IAMClient", str], Callable[[], object]]


def _login_profile(iam: IAMClient, user: str) -> Callable[[], object]:
    iam.create_login_profile(UserName=user, Password="Test-only-Passw0rd!")
    return lambda: iam.delete_login_profile(UserName=user)


def _access_key(iam: IAMClient, user: str) -> Callable[[], object]:
    key_id = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    return lambda: iam.delete_access_key(UserName=user, AccessKeyId=key_id)


def _signing_certificate(iam: IAMClient, user: str) -> Callable[[], object]:
    cert = iam.upload_signing_certificate(UserName=user, CertificateBody=certificate_pem())
    cert_id = cert["Certificate"]["CertificateId"]
    return lambda: iam.delete_signing_certificate(UserName=user, CertificateId=cert_id)


def _ssh_public_key(iam: IAMClient, user: str) -> Callable[[], object]:
    key = iam.upload_ssh_public_key(UserName=user, SSHPublicKeyBody=SSH_KEY)["SSHPublicKey"]
    key_id = key["SSHPublicKeyId"]
    return lambda: iam.delete_ssh_public_key(UserName=user, SSHPublicKeyId=key_id)


def _service_credential(iam: IAMClient, user: str) -> Callable[[], object]:
    created = iam.create_service_specific_credential(
        UserName=user, ServiceName="codecommit.amazonaws.com"
    )
    credential_id = created["ServiceSpecificCredential"]["ServiceSpecificCredentialId"]
    return lambda: iam.delete_service_specific_credential(
        UserName=user, ServiceSpecificCredentialId=credential_id
    )


def _mfa_device(iam: IAMClient, user: str) -> Callable[[], object]:
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{user}-mfa")
    serial = device["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(
        UserName=user,
        SerialNumber=serial,
        AuthenticationCode1="123456",
        AuthenticationCode2="654321",
    )
    return lambda: iam.deactivate_mfa_device(UserName=user, SerialNumber=serial)


def _inline_policy(iam: IAMClient, user: str) -> Callable[[], object]:
    iam.put_user_policy(UserName=user, PolicyName="inline", PolicyDocument=POLICY_DOCUMENT)
    return lambda: iam.delete_user_policy(UserName=user, PolicyName="inline")


def _managed_policy(iam: IAMClient, user: str) -> Callable[[], object]:
    arn = new_policy(iam, f"{user}-policy")
    iam.attach_user_policy(UserName=user, PolicyArn=arn)
    return lambda: iam.detach_user_policy(UserName=user, PolicyArn=arn)


def _group_membership(iam: IAMClient, user: str) -> Callable[[], object]:
    iam.create_group(GroupName=f"{user}-group")
    iam.add_user_to_group(GroupName=f"{user}-group", UserName=user)
    return lambda: iam.remove_user_from_group(GroupName=f"{user}-group", UserName=user)


@dataclass(frozen=True)
class Dependent:
    """Something IAM wants removed before DeleteUser, and how its refusal is worded."""

    attach: Attach
    message: str


#: In the order IAM checks them.
DEPENDENTS = (
    Dependent(_login_profile, "must delete login profile first"),
    Dependent(_access_key, "must delete access keys first"),
    Dependent(_signing_certificate, "must delete signing certificates first"),
    Dependent(_ssh_public_key, "must delete SSH public keys first"),
    Dependent(_service_credential, "must delete service specific credentials first"),
    Dependent(_mfa_device, "must delete MFA device first"),
    Dependent(_inline_policy, "must delete policies first"),
    Dependent(_managed_policy, "must detach all policies first"),
    Dependent(_group_membership, "must remove user from all groups first"),
)


@pytest.mark.parametrize("dependent", DEPENDENTS, ids=lambda d: d.message)
def test_delete_user_is_refused_while_the_user_has_a_dependent(
    iam: IAMClient, dependent: Dependent
) -> None:
    iam.create_user(UserName="ann")
    remove = dependent.attach(iam, "ann")

    with pytest.raises(ClientError) as refused:
        iam.delete_user(UserName="ann")

    assert refused.value.response["Error"]["Code"] == "DeleteConflict"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert dependent.message in refused.value.response["Error"]["Message"]
    assert iam.get_user(UserName="ann")["User"]["UserName"] == "ann"
    remove()  # the dependent is still there to be removed
    iam.delete_user(UserName="ann")
    assert user_names(iam) == []


def test_delete_user_names_the_first_dependent_in_iams_order(iam: IAMClient) -> None:
    iam.create_user(UserName="bea")
    removers = [dependent.attach(iam, "bea") for dependent in DEPENDENTS]

    for dependent, remove in zip(DEPENDENTS, removers, strict=True):
        assert dependent.message in error_message(lambda: iam.delete_user(UserName="bea"))
        remove()

    iam.delete_user(UserName="bea")
    assert user_names(iam) == []


# -- rule 2: user names are valid and unique regardless of case ---------------------------


@pytest.mark.parametrize("name", ["a b", "x" * 65, "josé", "a/b", "a#b", "tab\there"])
def test_create_user_refuses_invalid_names(iam: IAMClient, name: str) -> None:
    assert error_of(lambda: iam.create_user(UserName=name)) == ("ValidationError", 400)
    assert user_names(iam) == []


def test_create_user_accepts_every_allowed_character_and_64_characters(iam: IAMClient) -> None:
    iam.create_user(UserName="Az09_+=,.@-")
    iam.create_user(UserName="x" * 64)
    assert sorted(user_names(iam)) == ["Az09_+=,.@-", "x" * 64]


def test_create_user_refuses_a_name_taken_in_another_letter_case(iam: IAMClient) -> None:
    iam.create_user(UserName="alice@x.com")

    assert error_of(lambda: iam.create_user(UserName="Alice@X.com")) == (
        "EntityAlreadyExists",
        409,
    )
    assert user_names(iam) == ["alice@x.com"]


def test_names_are_looked_up_regardless_of_case(iam: IAMClient) -> None:
    iam.create_user(UserName="alice@x.com")
    iam.create_group(GroupName="Developers")

    iam.add_user_to_group(GroupName="developers", UserName="ALICE@X.COM")

    assert iam.get_user(UserName="Alice@X.Com")["User"]["UserName"] == "alice@x.com"
    groups = iam.list_groups_for_user(UserName="alice@x.com")["Groups"]
    assert [group["GroupName"] for group in groups] == ["Developers"]


@pytest.mark.parametrize("new_name", ["alice", "ALICE"])
def test_rename_onto_another_user_is_refused_and_changes_nothing(
    iam: IAMClient, new_name: str
) -> None:
    alice_id = iam.create_user(UserName="alice")["User"]["UserId"]
    iam.create_user(UserName="bob", Tags=[{"Key": "team", "Value": "b"}])

    code = error_of(lambda: iam.update_user(UserName="bob", NewUserName=new_name))

    assert code == ("EntityAlreadyExists", 409)
    assert sorted(user_names(iam)) == ["alice", "bob"]
    assert iam.get_user(UserName="alice")["User"]["UserId"] == alice_id
    assert tags_of(iam, "bob") == {"team": "b"}


def test_rename_to_the_same_name_in_another_case_is_refused(iam: IAMClient) -> None:
    iam.create_user(UserName="carol")
    assert error_of(lambda: iam.update_user(UserName="carol", NewUserName="Carol")) == (
        "EntityAlreadyExists",
        409,
    )
    assert user_names(iam) == ["carol"]


def test_rename_to_an_invalid_name_is_refused(iam: IAMClient) -> None:
    iam.create_user(UserName="dan")
    assert error_of(lambda: iam.update_user(UserName="dan", NewUserName="d n")) == (
        "ValidationError",
        400,
    )
    assert user_names(iam) == ["dan"]


# -- rule 3: tags ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [("a!b", "v"), ("k" * 129, "v"), ("k", "v" * 257), ("k", "(x)"), ("k", "a;b")],
    ids=["key-char", "key-length", "value-length", "value-char", "value-semicolon"],
)
def test_tags_breaking_the_api_constraints_are_refused(
    iam: IAMClient, key: str, value: str
) -> None:
    iam.create_user(UserName="eve", Tags=tag_list({"keep": "me"}))
    tag = tag_list({key: value})

    assert error_of(lambda: iam.tag_user(UserName="eve", Tags=tag)) == ("ValidationError", 400)
    assert error_of(lambda: iam.create_user(UserName="fay", Tags=tag)) == (
        "ValidationError",
        400,
    )
    assert tags_of(iam, "eve") == {"keep": "me"}
    assert user_names(iam) == ["eve"]


@pytest.mark.parametrize("key", ["aws:team", "AWS:Team", "Aws:x"])
def test_reserved_aws_prefix_is_refused_in_any_case(iam: IAMClient, key: str) -> None:
    iam.create_user(UserName="gus")
    tag = tag_list({key: "v"})

    assert error_of(lambda: iam.tag_user(UserName="gus", Tags=tag)) == ("InvalidInput", 400)
    assert error_of(lambda: iam.create_user(UserName="hal", Tags=tag)) == ("InvalidInput", 400)
    assert tags_of(iam, "gus") == {}
    assert user_names(iam) == ["gus"]


def test_tags_may_use_unicode_letters_digits_spaces_and_the_allowed_symbols(
    iam: IAMClient,
) -> None:
    tags = {"Größe": "Ünïcödé wert 1 _.:/=+-@", "empty": "", "k" * 128: "v" * 256}
    iam.create_user(UserName="ida", Tags=tag_list(tags))
    assert tags_of(iam, "ida") == tags


def test_more_than_fifty_tags_on_a_user_is_refused_counting_existing_tags(
    iam: IAMClient,
) -> None:
    existing = {f"k{i}": "old" for i in range(45)}
    iam.create_user(UserName="jo", Tags=tag_list(existing))
    six_new = tag_list({f"new{i}": "v" for i in range(6)})

    assert error_of(lambda: iam.tag_user(UserName="jo", Tags=six_new)) == ("LimitExceeded", 409)
    assert tags_of(iam, "jo") == existing

    # Five new keys plus three replaced ones (one differing only in case) make exactly 50.
    replacing = tag_list({"k0": "x", "k1": "x", "K2": "x"})
    iam.tag_user(UserName="jo", Tags=six_new[:5] + replacing)
    assert len(tags_of(iam, "jo")) == 50

    one_more = tag_list({"straw": "v"})
    assert error_of(lambda: iam.tag_user(UserName="jo", Tags=one_more)) == ("LimitExceeded", 409)
    assert len(tags_of(iam, "jo")) == 50


def test_a_single_request_may_carry_at_most_fifty_tags(iam: IAMClient) -> None:
    tags = tag_list({f"k{i}": "v" for i in range(51)})
    assert error_of(lambda: iam.create_user(UserName="kim", Tags=tags)) == (
        "ValidationError",
        400,
    )
    iam.create_user(UserName="kim", Tags=tags[:50])
    assert len(tags_of(iam, "kim")) == 50


def test_tag_keys_are_case_insensitive(iam: IAMClient) -> None:
    iam.create_user(UserName="lea", Tags=[{"Key": "Dept", "Value": "sales"}])
    duplicate = tag_list({"team": "a", "TEAM": "b"})

    assert error_of(lambda: iam.tag_user(UserName="lea", Tags=duplicate)) == ("InvalidInput", 400)
    iam.tag_user(UserName="lea", Tags=[{"Key": "dept", "Value": "ops"}])
    assert tags_of(iam, "lea") == {"dept": "ops"}
    iam.untag_user(UserName="lea", TagKeys=["DEPT"])
    assert tags_of(iam, "lea") == {}


# -- rule 4: a rename keeps everything that belongs to the user ----------------------------


def test_rename_keeps_tags_credentials_memberships_and_policies(iam: IAMClient) -> None:
    iam.create_user(UserName="old", Tags=[{"Key": "team", "Value": "core"}])
    for dependent in DEPENDENTS:
        dependent.attach(iam, "old")

    iam.update_user(UserName="old", NewUserName="new")

    assert error_of(lambda: iam.get_user(UserName="old")) == ("NoSuchEntity", 404)
    assert tags_of(iam, "new") == {"team": "core"}
    assert iam.get_user(UserName="new")["User"]["Tags"] == [{"Key": "team", "Value": "core"}]
    assert iam.get_login_profile(UserName="new")["LoginProfile"]["UserName"] == "new"
    keys = iam.list_access_keys(UserName="new")["AccessKeyMetadata"]
    assert [key["UserName"] for key in keys] == ["new"]
    ssh_keys = iam.list_ssh_public_keys(UserName="new")["SSHPublicKeys"]
    assert [key["UserName"] for key in ssh_keys] == ["new"]
    certificates = iam.list_signing_certificates(UserName="new")["Certificates"]
    assert [cert["UserName"] for cert in certificates] == ["new"]
    credentials = iam.list_service_specific_credentials(UserName="new")
    assert [c["UserName"] for c in credentials["ServiceSpecificCredentials"]] == ["new"]
    assert len(iam.list_mfa_devices(UserName="new")["MFADevices"]) == 1
    assert iam.list_user_policies(UserName="new")["PolicyNames"] == ["inline"]
    assert len(iam.list_attached_user_policies(UserName="new")["AttachedPolicies"]) == 1
    groups = iam.list_groups_for_user(UserName="new")["Groups"]
    assert [group["GroupName"] for group in groups] == ["old-group"]

    # Deleting a key under the new name really deletes it (moto would silently keep it).
    iam.delete_access_key(UserName="new", AccessKeyId=keys[0]["AccessKeyId"])
    assert iam.list_access_keys(UserName="new")["AccessKeyMetadata"] == []


def test_tags_do_not_stay_behind_with_the_old_name(iam: IAMClient) -> None:
    iam.create_user(UserName="mia", Tags=[{"Key": "team", "Value": "core"}])
    iam.update_user(UserName="mia", NewUserName="mia2")

    iam.create_user(UserName="mia")

    assert tags_of(iam, "mia") == {}
    assert tags_of(iam, "mia2") == {"team": "core"}


def test_a_path_change_keeps_tags(iam: IAMClient) -> None:
    iam.create_user(UserName="ned", Tags=[{"Key": "team", "Value": "core"}])
    iam.update_user(UserName="ned", NewPath="/staff/")
    assert iam.get_user(UserName="ned")["User"]["Arn"].endswith(":user/staff/ned")
    assert tags_of(iam, "ned") == {"team": "core"}


# -- rule 5: service-specific credentials ---------------------------------------------------


def test_service_specific_credentials_lifecycle(aws: EmbeddedAWS, iam: IAMClient) -> None:
    iam.create_user(UserName="ola")

    created = iam.create_service_specific_credential(
        UserName="ola", ServiceName="codecommit.amazonaws.com"
    )["ServiceSpecificCredential"]
    credential_id = created["ServiceSpecificCredentialId"]
    assert created["ServiceUserName"] == f"ola-at-{aws.account_id}"
    assert created["Status"] == "Active"
    assert created["ServicePassword"]

    iam.update_service_specific_credential(
        UserName="ola", ServiceSpecificCredentialId=credential_id, Status="Inactive"
    )
    listed = iam.list_service_specific_credentials(UserName="ola")["ServiceSpecificCredentials"]
    assert [(c["ServiceSpecificCredentialId"], c["Status"]) for c in listed] == [
        (credential_id, "Inactive")
    ]
    assert "ServicePassword" not in listed[0]

    reset = iam.reset_service_specific_credential(
        UserName="ola", ServiceSpecificCredentialId=credential_id
    )["ServiceSpecificCredential"]
    assert reset["ServicePassword"] != created["ServicePassword"]

    iam.delete_service_specific_credential(
        UserName="ola", ServiceSpecificCredentialId=credential_id
    )
    assert iam.list_service_specific_credentials(UserName="ola")["ServiceSpecificCredentials"] == []
    assert error_of(
        lambda: iam.delete_service_specific_credential(
            UserName="ola", ServiceSpecificCredentialId=credential_id
        )
    ) == ("NoSuchEntity", 404)


def test_service_specific_credentials_follow_iams_rules(iam: IAMClient) -> None:
    iam.create_user(UserName="pam")
    iam.create_user(UserName="quin")

    def create(user: str, service: str = "codecommit.amazonaws.com") -> str:
        credential = iam.create_service_specific_credential(UserName=user, ServiceName=service)
        return credential["ServiceSpecificCredential"]["ServiceSpecificCredentialId"]

    assert error_of(lambda: create("nobody")) == ("NoSuchEntity", 404)
    assert error_of(lambda: create("pam", "s3.amazonaws.com")) == ("NotSupportedService", 404)
    pams = [create("pam"), create("pam")]
    assert error_of(lambda: create("pam")) == ("LimitExceeded", 409)
    create("pam", "cassandra.amazonaws.com")  # the quota is per service
    assert error_of(
        lambda: iam.delete_service_specific_credential(
            UserName="quin", ServiceSpecificCredentialId=pams[0]
        )
    ) == ("NoSuchEntity", 404)
    assert (
        len(iam.list_service_specific_credentials(UserName="pam")["ServiceSpecificCredentials"])
        == 3
    )


def test_reset_forgets_service_specific_credentials(aws: EmbeddedAWS, iam: IAMClient) -> None:
    iam.create_user(UserName="rae")
    iam.create_service_specific_credential(UserName="rae", ServiceName="codecommit.amazonaws.com")

    aws.reset()

    iam.create_user(UserName="rae")
    assert iam.list_service_specific_credentials(UserName="rae")["ServiceSpecificCredentials"] == []
    iam.delete_user(UserName="rae")


# -- rule 6: other gaps between moto and IAM -------------------------------------------------


def test_delete_group_is_refused_while_it_has_members_or_policies(iam: IAMClient) -> None:
    iam.create_user(UserName="sam")
    iam.create_group(GroupName="ops")
    iam.add_user_to_group(GroupName="ops", UserName="sam")
    iam.put_group_policy(GroupName="ops", PolicyName="inline", PolicyDocument=POLICY_DOCUMENT)
    arn = new_policy(iam, "ops-policy")
    iam.attach_group_policy(GroupName="ops", PolicyArn=arn)

    steps: list[tuple[str, Callable[[], object]]] = [
        (
            "must remove users from group first",
            lambda: iam.remove_user_from_group(GroupName="ops", UserName="sam"),
        ),
        (
            "must delete policies first",
            lambda: iam.delete_group_policy(GroupName="ops", PolicyName="inline"),
        ),
        (
            "must detach all policies first",
            lambda: iam.detach_group_policy(GroupName="ops", PolicyArn=arn),
        ),
    ]
    for message, remove in steps:
        assert error_of(lambda: iam.delete_group(GroupName="ops")) == ("DeleteConflict", 409)
        assert message in error_message(lambda: iam.delete_group(GroupName="ops"))
        remove()

    iam.delete_group(GroupName="ops")
    assert iam.list_groups()["Groups"] == []


def test_delete_policy_is_refused_while_attached_or_versioned(iam: IAMClient) -> None:
    arn = new_policy(iam, "reports")
    iam.create_user(UserName="tia")
    iam.attach_user_policy(UserName="tia", PolicyArn=arn)

    assert error_of(lambda: iam.delete_policy(PolicyArn=arn)) == ("DeleteConflict", 409)
    iam.detach_user_policy(UserName="tia", PolicyArn=arn)
    version = iam.create_policy_version(PolicyArn=arn, PolicyDocument=POLICY_DOCUMENT)
    assert error_of(lambda: iam.delete_policy(PolicyArn=arn)) == ("DeleteConflict", 409)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["Arn"] == arn

    iam.delete_policy_version(PolicyArn=arn, VersionId=version["PolicyVersion"]["VersionId"])
    iam.delete_policy(PolicyArn=arn)
    assert error_of(lambda: iam.get_policy(PolicyArn=arn)) == ("NoSuchEntity", 404)


def test_attaching_a_policy_twice_counts_one_attachment(iam: IAMClient) -> None:
    arn = new_policy(iam, "reports")
    iam.create_user(UserName="uma")

    iam.attach_user_policy(UserName="uma", PolicyArn=arn)
    iam.attach_user_policy(UserName="uma", PolicyArn=arn)

    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    iam.detach_user_policy(UserName="uma", PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 0
    iam.delete_policy(PolicyArn=arn)


def test_group_and_policy_names_are_unique_regardless_of_case(iam: IAMClient) -> None:
    iam.create_group(GroupName="Admins")
    new_policy(iam, "Reports")

    assert error_of(lambda: iam.create_group(GroupName="admins")) == ("EntityAlreadyExists", 409)
    assert error_of(lambda: new_policy(iam, "REPORTS")) == ("EntityAlreadyExists", 409)
    assert error_of(
        lambda: iam.create_policy(
            PolicyName="reports", Path="/other/", PolicyDocument=POLICY_DOCUMENT
        )
    ) == ("EntityAlreadyExists", 409)
    iam.create_group(GroupName="Users")
    assert error_of(lambda: iam.update_group(GroupName="Users", NewGroupName="ADMINS")) == (
        "EntityAlreadyExists",
        409,
    )
    assert sorted(g["GroupName"] for g in iam.list_groups()["Groups"]) == ["Admins", "Users"]


def test_a_user_can_join_at_most_ten_groups(iam: IAMClient) -> None:
    iam.create_user(UserName="vic")
    for index in range(11):
        iam.create_group(GroupName=f"g{index}")
    for index in range(10):
        iam.add_user_to_group(GroupName=f"g{index}", UserName="vic")

    iam.add_user_to_group(GroupName="g0", UserName="vic")  # already a member: no-op
    assert error_of(lambda: iam.add_user_to_group(GroupName="g10", UserName="vic")) == (
        "LimitExceeded",
        409,
    )
    assert len(iam.list_groups_for_user(UserName="vic")["Groups"]) == 10


def test_a_user_can_have_at_most_ten_managed_policies(iam: IAMClient) -> None:
    iam.create_user(UserName="wes")
    arns = [new_policy(iam, f"p{index}") for index in range(11)]
    for arn in arns[:10]:
        iam.attach_user_policy(UserName="wes", PolicyArn=arn)

    iam.attach_user_policy(UserName="wes", PolicyArn=arns[0])  # already attached: no-op
    assert error_of(lambda: iam.attach_user_policy(UserName="wes", PolicyArn=arns[10])) == (
        "LimitExceeded",
        409,
    )
    assert len(iam.list_attached_user_policies(UserName="wes")["AttachedPolicies"]) == 10


@pytest.mark.parametrize(
    "call",
    [
        lambda iam: iam.add_user_to_group(GroupName="g", UserName="nobody"),
        lambda iam: iam.add_user_to_group(GroupName="nogroup", UserName="xia"),
        lambda iam: iam.attach_user_policy(UserName="nobody", PolicyArn=READ_ONLY_ACCESS),
        lambda iam: iam.attach_user_policy(
            UserName="xia", PolicyArn="arn:aws:iam::123456789012:policy/none"
        ),
        lambda iam: iam.remove_user_from_group(GroupName="g", UserName="xia"),
        lambda iam: iam.detach_user_policy(UserName="xia", PolicyArn=READ_ONLY_ACCESS),
        lambda iam: iam.tag_user(UserName="nobody", Tags=[{"Key": "k", "Value": "v"}]),
        lambda iam: iam.delete_user(UserName="nobody"),
        lambda iam: iam.update_user(UserName="nobody", NewUserName="x"),
    ],
    ids=[
        "add-missing-user",
        "add-to-missing-group",
        "attach-to-missing-user",
        "attach-missing-policy",
        "remove-non-member",
        "detach-unattached",
        "tag-missing-user",
        "delete-missing-user",
        "rename-missing-user",
    ],
)
def test_operations_on_missing_entities_or_links_are_no_such_entity(
    iam: IAMClient, call: Callable[[IAMClient], object]
) -> None:
    """Moto already gets these right; kept so a change in moto or in the rules shows up."""
    iam.create_user(UserName="xia")
    iam.create_group(GroupName="g")
    assert error_of(lambda: call(iam)) == ("NoSuchEntity", 404)


def test_a_group_can_have_at_most_ten_managed_policies(iam: IAMClient) -> None:
    iam.create_group(GroupName="crew")
    arns = [new_policy(iam, f"p{index}") for index in range(11)]
    for arn in arns[:10]:
        iam.attach_group_policy(GroupName="crew", PolicyArn=arn)

    assert error_of(lambda: iam.attach_group_policy(GroupName="crew", PolicyArn=arns[10])) == (
        "LimitExceeded",
        409,
    )
    assert len(iam.list_attached_group_policies(GroupName="crew")["AttachedPolicies"]) == 10


def test_aws_managed_policies_are_present(iam: IAMClient) -> None:
    """They are added to moto on demand; to a client they are simply there."""
    service_role = "arn:aws:iam::aws:policy/service-role/AIDevOpsChannelAccessPolicy"
    iam.create_user(UserName="yan")
    iam.attach_user_policy(UserName="yan", PolicyArn=READ_ONLY_ACCESS)
    attached = iam.list_attached_user_policies(UserName="yan")["AttachedPolicies"]
    assert [policy["PolicyArn"] for policy in attached] == [READ_ONLY_ACCESS]
    assert iam.get_policy(PolicyArn=READ_ONLY_ACCESS)["Policy"]["AttachmentCount"] == 1
    assert iam.get_policy(PolicyArn=service_role)["Policy"]["Path"] == "/service-role/"

    listed = iam.list_policies(Scope="AWS", MaxItems=1000)
    assert (len(listed["Policies"]), listed["IsTruncated"]) == (1000, True)
    bogus = "arn:aws:iam::aws:policy/NoSuchPolicy"
    assert error_of(lambda: iam.get_policy(PolicyArn=bogus)) == ("NoSuchEntity", 404)
    customer = new_policy(iam, "mine")
    local = iam.list_policies(Scope="Local")["Policies"]
    assert [policy["Arn"] for policy in local] == [customer]


def test_permissions_boundaries_are_kept_and_reported(iam: IAMClient) -> None:
    boundary = new_policy(iam, "boundary")
    missing = "arn:aws:iam::123456789012:policy/missing"

    def boundary_of(user: str) -> str | None:
        found = iam.get_user(UserName=user)["User"].get("PermissionsBoundary")
        return None if found is None else found["PermissionsBoundaryArn"]

    assert error_of(lambda: iam.create_user(UserName="ben", PermissionsBoundary=missing)) == (
        "NoSuchEntity",
        404,
    )
    assert user_names(iam) == []
    created = iam.create_user(UserName="ben", PermissionsBoundary=boundary)["User"]
    assert created["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    assert boundary_of("ben") == boundary

    iam.update_user(UserName="ben", NewUserName="benjamin")
    assert boundary_of("benjamin") == boundary
    details = iam.get_account_authorization_details(Filter=["User"])["UserDetailList"]
    assert [d["PermissionsBoundary"]["PermissionsBoundaryArn"] for d in details] == [boundary]

    iam.put_user_permissions_boundary(UserName="benjamin", PermissionsBoundary=READ_ONLY_ACCESS)
    assert boundary_of("benjamin") == READ_ONLY_ACCESS
    assert error_of(
        lambda: iam.put_user_permissions_boundary(UserName="benjamin", PermissionsBoundary=missing)
    ) == ("NoSuchEntity", 404)
    iam.delete_user_permissions_boundary(UserName="benjamin")
    assert boundary_of("benjamin") is None
    iam.delete_user(UserName="benjamin")


def test_list_users_is_paginated_like_iam(iam: IAMClient) -> None:
    for index in range(101):
        iam.create_user(UserName=f"user{index:03}")

    first = iam.list_users()
    assert len(first["Users"]) == 100
    assert first["IsTruncated"] is True
    rest = iam.list_users(Marker=first["Marker"])
    assert [u["UserName"] for u in rest["Users"]] == ["user100"]
    assert rest["IsTruncated"] is False

    pages = iam.get_paginator("list_users").paginate(PaginationConfig={"PageSize": 30})
    assert sum(len(page["Users"]) for page in pages) == 101


def test_group_members_groups_and_tags_are_paginated(iam: IAMClient) -> None:
    iam.create_group(GroupName="team")
    for index in range(3):
        iam.create_user(
            UserName=f"m{index}", Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(3)]
        )
        iam.add_user_to_group(GroupName="team", UserName=f"m{index}")

    members = iam.get_group(GroupName="team", MaxItems=2)
    assert (len(members["Users"]), members["IsTruncated"]) == (2, True)
    more = iam.get_group(GroupName="team", MaxItems=2, Marker=members["Marker"])
    assert [u["UserName"] for u in members["Users"] + more["Users"]] == ["m0", "m1", "m2"]
    tags = iam.list_user_tags(UserName="m0", MaxItems=2)
    assert (len(tags["Tags"]), tags["IsTruncated"]) == (2, True)
    assert error_of(lambda: iam.list_users(Marker="not-a-marker")) == ("InvalidInput", 400)
    assert error_of(lambda: iam.list_users(MaxItems=1001)) == ("ValidationError", 400)


# -- fault injection, the call log, reset, delay, concurrency -------------------------------


def test_fail_next_answers_with_the_error_and_changes_nothing(aws: EmbeddedAWS) -> None:
    iam = no_retry_iam(aws)
    iam.create_user(UserName="zoe")
    aws.fail_next(action="AttachUserPolicy", code="Throttling", status=400, message="Rate exceeded")

    with pytest.raises(ClientError) as faulted:
        iam.attach_user_policy(UserName="zoe", PolicyArn=READ_ONLY_ACCESS)

    assert faulted.value.response["Error"]["Code"] == "Throttling"
    assert faulted.value.response["Error"]["Message"] == "Rate exceeded"
    assert iam.list_attached_user_policies(UserName="zoe")["AttachedPolicies"] == []
    iam.attach_user_policy(UserName="zoe", PolicyArn=READ_ONLY_ACCESS)  # only the next one
    assert len(iam.list_attached_user_policies(UserName="zoe")["AttachedPolicies"]) == 1
    assert aws.calls() == [
        "CreateUser",
        "AttachUserPolicy",
        "ListAttachedUserPolicies",
        "AttachUserPolicy",
        "ListAttachedUserPolicies",
    ]


def test_fail_next_times_statuses_and_other_actions(aws: EmbeddedAWS) -> None:
    iam = no_retry_iam(aws)
    aws.fail_next("CreateUser", code="ServiceUnavailable", status=503, message="down", times=2)

    assert error_of(lambda: iam.create_user(UserName="a")) == ("ServiceUnavailable", 503)
    iam.list_users()  # another action is not affected
    assert aws.pending_faults() == 1
    assert error_of(lambda: iam.create_user(UserName="a")) == ("ServiceUnavailable", 503)
    iam.create_user(UserName="a")
    assert user_names(iam) == ["a"]

    aws.fail_next("DeleteUser", times=5)
    aws.reset_faults()
    iam.delete_user(UserName="a")
    assert aws.pending_faults() == 0


def test_controls_refuse_nonsense(aws: EmbeddedAWS) -> None:
    with pytest.raises(ValueError, match="times"):
        aws.fail_next("ListUsers", times=0)
    with pytest.raises(ValueError, match="request_delay"):
        aws.request_delay = -1
    assert aws.pending_faults() == 0


def test_faults_can_target_other_query_services(aws: EmbeddedAWS) -> None:
    sts = aws.sts_client(Config(retries={"total_max_attempts": 1}))
    aws.fail_next("GetCallerIdentity", code="AccessDenied", status=403, service="sts")

    assert error_of(sts.get_caller_identity) == ("AccessDenied", 403)
    assert sts.get_caller_identity()["Account"] == aws.account_id
    assert aws.calls() == []
    assert aws.calls(service=None) == ["GetCallerIdentity", "GetCallerIdentity"]


def test_calls_records_refused_requests_and_can_be_cleared(
    aws: EmbeddedAWS, iam: IAMClient
) -> None:
    iam.create_user(UserName="amy")
    iam.create_login_profile(UserName="amy", Password="Test-only-Passw0rd!")
    aws.clear_calls()

    error_of(lambda: iam.delete_user(UserName="amy"))
    iam.delete_login_profile(UserName="amy")
    iam.delete_user(UserName="amy")

    assert aws.calls() == ["DeleteUser", "DeleteLoginProfile", "DeleteUser"]


def test_reset_empties_everything(aws: EmbeddedAWS, iam: IAMClient) -> None:
    iam.create_user(UserName="bo")
    iam.create_group(GroupName="g")
    new_policy(iam, "p")
    aws.fail_next("ListUsers")

    aws.reset()

    assert aws.calls() == []
    assert aws.pending_faults() == 0
    assert user_names(iam) == []  # not faulted: the fault was disarmed too
    assert iam.list_groups()["Groups"] == []
    assert iam.list_policies(Scope="Local")["Policies"] == []


def test_request_delay_applies_to_every_request_without_serialising_them(
    aws: EmbeddedAWS, iam: IAMClient
) -> None:
    aws.request_delay = 0.2

    started = time.perf_counter()
    iam.list_users()
    assert time.perf_counter() - started >= 0.2

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: aws.iam_client().list_users(), range(8)))
    assert time.perf_counter() - started < 8 * 0.2 / 2


def test_concurrent_clients_all_succeed(aws: EmbeddedAWS, iam: IAMClient) -> None:
    def provision(worker: int) -> None:
        client = aws.iam_client()
        for index in range(10):
            name = f"w{worker}-u{index}"
            client.create_user(UserName=name)
            client.tag_user(UserName=name, Tags=[{"Key": "worker", "Value": str(worker)}])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(provision, range(8)))

    users = iam.get_paginator("list_users").paginate()
    assert sum(len(page["Users"]) for page in users) == 80
    assert tags_of(iam, "w7-u9") == {"worker": "7"}
    assert aws.calls().count("TagUser") == 80


def test_concurrent_creates_of_one_name_in_different_cases_admit_exactly_one(
    aws: EmbeddedAWS, iam: IAMClient
) -> None:
    barrier = threading.Barrier(8)

    def create(variant: str) -> str:
        client = no_retry_iam(aws)
        barrier.wait()
        try:
            client.create_user(UserName=variant)
        except ClientError as exc:
            return exc.response["Error"]["Code"]
        return "created"

    variants = ["race", "RACE", "Race", "rAce", "raCe", "racE", "RAce", "raCE"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = sorted(pool.map(create, variants))

    assert outcomes == ["EntityAlreadyExists"] * 7 + ["created"]
    assert len(user_names(iam)) == 1


def test_operations_moto_lacks_fail_fast_with_not_implemented(aws: EmbeddedAWS) -> None:
    assert error_of(no_retry_iam(aws).get_account_properties) == ("NotImplemented", 501)


# -- lifecycle and client environment ------------------------------------------------------


def test_client_env_works_in_a_subprocess_and_ignores_the_users_aws_config(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    iam.create_user(UserName="sub")
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[profile work]\nregion = eu-west-1\n")
    (tmp_path / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAREALKEY\naws_secret_access_key = secret\n"
    )
    user_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_PROFILE": "work"}
    script = (
        "import boto3; print([u['UserName'] for u in boto3.client('iam').list_users()['Users']])"
    )

    completed = subprocess.run(
        [sys.executable, "-c", script],
        env=aws.subprocess_env(user_env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert completed.stdout.strip() == "['sub']"
    assert aws.client_env()["AWS_ENDPOINT_URL"] == aws.endpoint_url


def test_a_second_server_can_run_without_managed_policies_and_releases_its_port(
    aws: EmbeddedAWS,
) -> None:
    with EmbeddedAWS(load_aws_managed_policies=False) as bare:
        assert bare.endpoint_url.startswith("http://127.0.0.1:")
        assert bare.port != aws.port
        iam = bare.iam_client()
        iam.create_user(UserName="c")
        assert error_of(
            lambda: iam.attach_user_policy(UserName="c", PolicyArn=READ_ONLY_ACCESS)
        ) == ("NoSuchEntity", 404)
        with pytest.raises(RuntimeError):
            bare.start()
        port = bare.port

    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    aws.reset()  # back to the session server's own settings
    session_iam = aws.iam_client()
    session_iam.create_user(UserName="c")
    session_iam.attach_user_policy(UserName="c", PolicyArn=READ_ONLY_ACCESS)


def test_the_simulator_reads_managed_policies_and_an_explicit_deny_wins(iam: IAMClient) -> None:
    arn = iam.create_policy(PolicyName="reads", PolicyDocument=POLICY_DOCUMENT)["Policy"]["Arn"]
    newer = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
        }
    )
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=newer, SetAsDefault=True)
    iam.create_group(GroupName="readers")
    iam.attach_group_policy(GroupName="readers", PolicyArn=arn)
    user = iam.create_user(UserName="sim")["User"]
    iam.add_user_to_group(GroupName="readers", UserName="sim")

    def decisions() -> dict[str, str]:
        results = iam.simulate_principal_policy(
            PolicySourceArn=user["Arn"], ActionNames=["s3:ListBucket", "s3:GetObject"]
        )["EvaluationResults"]
        return {r["EvalActionName"]: r["EvalDecision"] for r in results}

    # the group's managed policy counts, by its default version (v2), not its first
    assert decisions() == {"s3:ListBucket": "allowed", "s3:GetObject": "implicitDeny"}
    iam.attach_user_policy(UserName="sim", PolicyArn=arn)
    deny = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}],
        }
    )
    iam.put_user_policy(UserName="sim", PolicyName="deny-all", PolicyDocument=deny)
    assert decisions() == {"s3:ListBucket": "explicitDeny", "s3:GetObject": "explicitDeny"}
