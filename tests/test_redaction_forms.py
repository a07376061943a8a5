"""The redactor masks a secret however it is written: JSON- or repr-escaped, percent-encoded.

Masking only the plain value missed a secret with a ``"`` or ``\\`` inside JSON output (which
writes ``\\"`` and ``\\\\``) and one in a URL (``%2F``, ``+`` for a space), as an access log
writes request lines.
"""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus, urlencode

import pytest

from hostsim.cli import main
from hostsim.embedded_aws import EmbeddedAWS
from hostsim.redaction import MASK, Redactor

#: Quotes, backslash, slash, plus, space, non-ASCII: every character an encoder changes.
SECRET = 'wJalr"XUt/nFEMI K7MD\\ENG+bPx=RfiCYé'


def _form_cases() -> dict[str, str]:
    return {
        "plain": SECRET,
        "json": json.dumps(SECRET),
        "json-unicode": json.dumps(SECRET, ensure_ascii=False),
        "json-in-json": json.dumps({"log": json.dumps({"token": SECRET})}),
        "repr": repr(SECRET),
        "percent": quote(SECRET, safe=""),
        "percent-keeping-slash": quote(SECRET),
        "form": quote_plus(SECRET),
        "query": urlencode({"token": SECRET, "next": "/home"}),
        "percent-lower-hex": "".join(f"%{byte:02x}" for byte in SECRET.encode("utf-8")),
        "mixed": "wJalr%22XUt%2FnFEMI+K7MD%5CENG%2BbPx=RfiCY%C3%A9",
    }


@pytest.mark.parametrize(("form", "text"), sorted(_form_cases().items()))
def test_every_written_form_of_a_secret_is_masked(form: str, text: str) -> None:
    redact = Redactor([SECRET])
    line = f"GET /callback?{text} 200 -- {text}"
    masked = redact(line)
    assert MASK in masked, masked
    for part in ("wJalr", "RfiCY", "K7MD"):
        assert part not in masked, (form, masked)


def test_text_without_the_secret_is_left_alone() -> None:
    redact = Redactor([SECRET])
    for text in ("GET /users?filter=userName%20eq%20%22ann%22 200", 'say "hi" \\ bye + 1'):
        assert redact(text) == text


def test_a_secret_added_later_is_masked_in_its_encoded_forms_too() -> None:
    redact = Redactor(["first-secret"])
    assert redact(quote("first-secret")) == MASK
    redact.add("second/secret value")
    assert redact(quote_plus("second/secret value")) == MASK
    assert redact(json.dumps("second/secret value")) == f'"{MASK}"'


def test_a_secret_in_the_clis_json_output_is_masked_with_its_escapes(
    aws_env: EmbeddedAWS,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused email is echoed with ``repr`` in the error, and ``--json`` escapes that again:
    only the twice-escaped form of the secret reaches the stream."""
    secret = 'tok"en\\secret-42'
    monkeypatch.setenv("IDHUB_SCIM_TOKEN", secret)
    capsys.readouterr()
    code = main(["create", secret, "--json"])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "secret-42" not in out and "secret-42" not in err, (out, err)
    assert MASK in out and MASK in err
