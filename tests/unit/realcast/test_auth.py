"""realcast.auth: token verification pitfalls, claims, ranks and minting."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from rc_fakes import FakeClock

from realcast.auth import Principal, Rank, TokenVerifier, mint_token
from realcast.config import AppConfig
from realcast.errors import AuthenticationFailed, ConfigError

SECRET = "0123456789abcdef0123456789abcdef"
API_KEY = "k" * 16
HS_APP = AppConfig("app_hs", "HS256", SECRET, API_KEY)
OTHER_APP = AppConfig("app_other", "HS256", SECRET, API_KEY)  # same secret on purpose


def claims(clock: FakeClock, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "user_1", "aud": "app_hs", "exp": int(clock.now) + 3600, "name": "Alice"}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: Any = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=alg)


@pytest.fixture
def verifier(clock: FakeClock) -> TokenVerifier:
    return TokenVerifier([HS_APP, OTHER_APP], leeway=5.0, clock=clock)


def refused(verifier: TokenVerifier, token: object, app_id: object = "app_hs") -> str:
    with pytest.raises(AuthenticationFailed) as info:
        verifier.verify(token, app_id)
    assert info.value.as_payload()["type"] == "authentication_failed"
    return info.value.message


def test_valid_token_gives_a_principal(verifier: TokenVerifier, clock: FakeClock) -> None:
    token = sign(claims(clock, roles=["moderator", "superuser"], moderator_of=["s1"], broadcaster_of=["s2"]))
    p = verifier.verify(token, "app_hs")
    assert p == Principal(
        app_id="app_hs",
        user_id="user_1",
        username="Alice",
        roles=frozenset({"moderator"}),  # unknown roles are dropped
        moderator_of=frozenset({"s1"}),
        broadcaster_of=frozenset({"s2"}),
        expires_at=clock.now + 3600,
    )


def test_username_defaults_to_sub_and_role_string_is_accepted(verifier: TokenVerifier, clock: FakeClock) -> None:
    p = verifier.verify(sign(claims(clock, name=None, role="admin")), "app_hs")
    assert p.username == "user_1"
    assert p.roles == {"admin"}


def test_alg_none_is_refused(verifier: TokenVerifier, clock: FakeClock) -> None:
    token = jwt.encode(claims(clock), None, algorithm="none")
    assert refused(verifier, token) == "invalid token"


def test_alg_none_with_header_lying_is_refused(verifier: TokenVerifier, clock: FakeClock) -> None:
    # Header says HS256, but there is no signature at all.
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims(clock)).encode()).rstrip(b"=")
    refused(verifier, f"{header.decode()}.{body.decode()}.")


def test_hs256_signed_with_the_rs256_public_key_is_refused(rsa_pems: tuple[str, str], clock: FakeClock) -> None:
    private, public = rsa_pems
    rs_app = AppConfig("app_rs", "RS256", public, API_KEY)
    verifier = TokenVerifier([rs_app], clock=clock)
    good = sign(claims(clock, aud="app_rs"), private, "RS256")
    assert verifier.verify(good, "app_rs").user_id == "user_1"
    # pyjwt refuses to HMAC-sign with a PEM, so forge the token by hand.
    import hashlib
    import hmac

    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims(clock, aud="app_rs")).encode()).rstrip(b"=")
    signing_input = header + b"." + body
    mac = hmac.new(public.encode(), signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()
    assert refused(verifier, forged, "app_rs") == "invalid token"


def test_es256_app(ec_pems: tuple[str, str], clock: FakeClock) -> None:
    private, public = ec_pems
    verifier = TokenVerifier([AppConfig("app_es", "ES256", public, API_KEY)], clock=clock)
    assert verifier.verify(sign(claims(clock, aud="app_es"), private, "ES256"), "app_es").username == "Alice"
    refused(verifier, sign(claims(clock, aud="app_es"), SECRET), "app_es")


def test_wrong_secret_is_refused(verifier: TokenVerifier, clock: FakeClock) -> None:
    refused(verifier, sign(claims(clock), "x" * 32))


def test_expired_token_is_refused_after_the_leeway(verifier: TokenVerifier, clock: FakeClock) -> None:
    token = sign(claims(clock, exp=int(clock.now) - 3))
    assert verifier.verify(token, "app_hs").user_id == "user_1"  # within 5 s of leeway
    clock.advance(3)
    assert refused(verifier, token) == "token expired"


def test_exp_is_required_and_must_be_a_number(verifier: TokenVerifier, clock: FakeClock) -> None:
    assert "exp" in refused(verifier, sign({k: v for k, v in claims(clock).items() if k != "exp"}))
    refused(verifier, sign(claims(clock, exp="tomorrow")))
    refused(verifier, sign(claims(clock, exp=True)))


def test_not_yet_valid_is_refused(verifier: TokenVerifier, clock: FakeClock) -> None:
    assert refused(verifier, sign(claims(clock, nbf=int(clock.now) + 60))) == "token not yet valid"
    assert refused(verifier, sign(claims(clock, iat=int(clock.now) + 60))) == "token not yet valid"
    assert verifier.verify(sign(claims(clock, nbf=int(clock.now) + 4)), "app_hs")  # within leeway


def test_token_for_another_app_is_refused_even_with_a_shared_secret(verifier: TokenVerifier, clock: FakeClock) -> None:
    token = sign(claims(clock, aud="app_other"))
    assert verifier.verify(token, "app_other").app_id == "app_other"
    assert refused(verifier, token, "app_hs") == "token is not for this app"
    assert "aud" in refused(verifier, sign(claims(clock, aud=None)))


def test_audience_list_containing_the_app_is_accepted(verifier: TokenVerifier, clock: FakeClock) -> None:
    assert verifier.verify(sign(claims(clock, aud=["x", "app_hs"])), "app_hs")


def test_unknown_app_and_garbage(verifier: TokenVerifier, clock: FakeClock) -> None:
    assert refused(verifier, sign(claims(clock)), "app_nope") == "invalid token"
    refused(verifier, "not.a.jwt")
    refused(verifier, "")
    refused(verifier, 42)
    refused(verifier, sign(claims(clock)), None)
    refused(verifier, "a" * 9000)


def test_unknown_app_cannot_be_told_from_a_bad_token(verifier: TokenVerifier, clock: FakeClock) -> None:
    # Whatever a prober sends before holding a validly signed token, a known and an unknown app
    # answer alike: a good token, a forged one, another algorithm, no signature, garbage.
    probes = [
        sign(claims(clock)),
        sign(claims(clock), "x" * 32),
        jwt.encode(claims(clock), None, algorithm="none"),
        sign(claims(clock), "x" * 48, "HS384"),
        "not.a.jwt",
        "",
    ]
    for probe in probes[1:]:
        assert refused(verifier, probe, "app_hs") == refused(verifier, probe, "app_nope") == "invalid token"
    assert refused(verifier, probes[0], "app_nope") == "invalid token"


@pytest.mark.parametrize(
    "bad",
    [
        {"sub": ""},
        {"sub": 12},
        {"sub": "a\nb"},
        {"sub": " padded"},
        {"name": ""},
        {"name": "x" * 65},
        {"name": "evil\u202e"},
        {"roles": ["x"] * 1001},
        {"roles": [1]},
        {"moderator_of": {"a": 1}},
    ],
)
def test_malformed_claims_are_refused(verifier: TokenVerifier, clock: FakeClock, bad: dict[str, Any]) -> None:
    payload = claims(clock)
    payload.update(bad)
    refused(verifier, sign(payload))


def test_ranks() -> None:
    viewer = Principal("a", "u", "u")
    assert viewer.rank_in("s") is Rank.VIEWER
    assert Principal("a", "u", "u", moderator_of=frozenset({"s"})).rank_in("s") is Rank.MODERATOR
    assert Principal("a", "u", "u", moderator_of=frozenset({"s"})).rank_in("t") is Rank.VIEWER
    assert Principal("a", "u", "u", roles=frozenset({"moderator"})).rank_in("t") is Rank.MODERATOR
    assert Principal("a", "u", "u", broadcaster_of=frozenset({"s"})).rank_in("s") is Rank.BROADCASTER
    assert Principal("a", "u", "u", roles=frozenset({"admin"})).rank_in("s") is Rank.ADMIN
    assert Rank.ADMIN > Rank.BROADCASTER > Rank.MODERATOR > Rank.VIEWER


def test_minted_tokens_verify(verifier: TokenVerifier, clock: FakeClock) -> None:
    token = mint_token(HS_APP, "u9", username="Bob", roles=["moderator"], broadcaster_of=["s1"], ttl=60, now=clock.now)
    p = verifier.verify(token, "app_hs")
    assert (p.user_id, p.username, p.roles, p.broadcaster_of) == ("u9", "Bob", {"moderator"}, {"s1"})
    clock.advance(66)
    refused(verifier, token)


def test_minting_checks_its_arguments(rsa_pems: tuple[str, str], ec_pems: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="ttl"):
        mint_token(HS_APP, "u", ttl=0)
    with pytest.raises(ValueError, match="roles"):
        mint_token(HS_APP, "u", roles=["god"])
    rs_app = AppConfig("app_rs", "RS256", rsa_pems[1], API_KEY)
    with pytest.raises(ValueError, match="private key"):
        mint_token(rs_app, "u")
    with pytest.raises(ConfigError):
        mint_token(rs_app, "u", private_key=ec_pems[0])
    token = mint_token(rs_app, "u", private_key=rsa_pems[0])
    assert TokenVerifier([rs_app]).verify(token, "app_rs").user_id == "u"


def test_prepared_hmac_keys_stay_per_app(clock: FakeClock) -> None:
    # HMAC keys are prepared once per secret and kept (realcast.jwt_decoder._PreparedHMAC): tokens of
    # two apps with different secrets, verified in turn, must each need their own secret.
    second_secret = "fedcba9876543210" * 4  # HS512 wants 64 bytes
    apps = [HS_APP, AppConfig("app_two", "HS512", second_secret, API_KEY)]
    verifier = TokenVerifier(apps, clock=clock)
    for _ in range(3):
        assert verifier.verify(sign(claims(clock)), "app_hs").user_id == "user_1"
        two = sign(claims(clock, aud="app_two"), second_secret, "HS512")
        assert verifier.verify(two, "app_two").user_id == "user_1"
        wrong_secret = "0123456789abcdef" * 4  # as long as HS512 wants, but not app_two's
        refused(verifier, sign(claims(clock, aud="app_two"), wrong_secret, "HS512"), "app_two")
        refused(verifier, sign(claims(clock), second_secret), "app_hs")
