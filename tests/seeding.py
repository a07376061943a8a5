"""Helpers that set up IAM state for tests with plain boto3, as an administrator would."""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

    from hostsim.embedded_aws import EmbeddedAWS

ACCOUNT = "123456789012"


#: The prefixes of IAM's read actions: every other call the embedded AWS saw is a write.
READS = ("Get", "List", "Simulate")


def writes(aws: EmbeddedAWS) -> list[str]:
    """The write calls the embedded AWS saw since its calls were last cleared, in order."""
    return [call for call in aws.calls() if not call.startswith(READS)]


def document(action: str = "s3:GetObject") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}],
        }
    )


def policy(iam: IAMClient, name: str) -> str:
    """Create a customer-managed policy; returns its ARN."""
    return iam.create_policy(PolicyName=name, PolicyDocument=document())["Policy"]["Arn"]


def group(iam: IAMClient, name: str, *policy_arns: str) -> None:
    iam.create_group(GroupName=name)
    for arn in policy_arns:
        iam.attach_group_policy(GroupName=name, PolicyArn=arn)


def tags_of(iam: IAMClient, user_name: str) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in iam.list_user_tags(UserName=user_name)["Tags"]}


def groups_of(iam: IAMClient, user_name: str) -> set[str]:
    return {g["GroupName"] for g in iam.list_groups_for_user(UserName=user_name)["Groups"]}


def direct_policies_of(iam: IAMClient, user_name: str) -> set[str]:
    attached = iam.list_attached_user_policies(UserName=user_name)["AttachedPolicies"]
    return {p["PolicyArn"] for p in attached}


def user_names(iam: IAMClient) -> set[str]:
    return {user["UserName"] for user in iam.list_users()["Users"]}


def fully_equipped_user(iam: IAMClient, name: str, group_name: str, policy_arn: str) -> None:
    """A user with one of everything IAM requires removed before DeleteUser."""
    iam.create_user(UserName=name)
    iam.create_login_profile(UserName=name, Password="Test-only-Passw0rd!")
    iam.create_access_key(UserName=name)
    iam.create_access_key(UserName=name)
    iam.upload_ssh_public_key(UserName=name, SSHPublicKeyBody=ssh_public_key())
    iam.upload_signing_certificate(UserName=name, CertificateBody=certificate())
    iam.create_service_specific_credential(UserName=name, ServiceName="codecommit.amazonaws.com")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=name.split("@", 1)[0])[
        "VirtualMFADevice"
    ]["SerialNumber"]
    iam.enable_mfa_device(
        UserName=name,
        SerialNumber=serial,
        AuthenticationCode1="123456",
        AuthenticationCode2="654321",
    )
    iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=document())
    iam.attach_user_policy(UserName=name, PolicyArn=policy_arn)
    iam.add_user_to_group(GroupName=group_name, UserName=name)


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ssh_public_key() -> str:
    """A real OpenSSH public key (IAM checks the format)."""
    public = _private_key().public_key()
    return public.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def certificate() -> str:
    """A real self-signed X.509 certificate in PEM (IAM parses signing certificates)."""
    key = _private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idhub-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.PEM).decode()
