"""Identity in the running platform: a citizen registers, gets a code by SMS, signs in.

On the package's live platform, as `panjereh up` runs it (the simulator's citizens sign in
beside this one, with mobiles of their own).
"""

from __future__ import annotations

import httpx
import jwt as pyjwt
import pytest

from infra.platform import LocalPlatform
from services.identity.domain.citizens import normalise_mobile
from tests.integration.identity.conftest import code_sent_to, new_mobile, new_national_id
from tests.slots import e2e_ports

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PORTS = e2e_ports()


async def test_a_citizen_registers_receives_a_code_signs_in_and_the_token_verifies(
    platform: LocalPlatform,
) -> None:
    national_id, mobile = new_national_id(), new_mobile()
    base = f"http://127.0.0.1:{PORTS.identity}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        registered = await http.post(
            "/citizens",
            json={
                "national_id": national_id,
                "mobile": mobile,
                "first_name": "زهرا",
                "last_name": "کریمی",
                "birth_date": "1990-09-22",
                "province": "IR-00",
            },
        )
        assert registered.status_code == 201, registered.text
        sent = await http.post("/citizens/sign-in/code", json={"national_id": national_id})
        assert sent.status_code == 202, sent.text
        code = await code_sent_to(platform.kafka_admin, normalise_mobile(mobile))
        signed_in = await http.post(
            "/citizens/sign-in", json={"national_id": national_id, "code": code}
        )
        assert signed_in.status_code == 200, signed_in.text
        token = signed_in.json()["access_token"]
        jwks = pyjwt.PyJWKSet.from_dict((await http.get("/.well-known/jwks.json")).json())
    claims = pyjwt.decode(
        token,
        jwks[pyjwt.get_unverified_header(token)["kid"]].key,
        algorithms=["ES256"],
        audience="panjereh",
    )
    assert claims["sub"] == registered.json()["citizen"]
    assert claims["acr"] == "loa2"
