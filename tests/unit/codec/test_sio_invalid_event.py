"""SioDecoder: an EVENT whose JSON does not decode names whom to answer (issue 12)."""

from __future__ import annotations

import pytest

from engineio_min.codec.sio import InvalidEventPayload, SioDecoder, SioPacket, SioType
from engineio_min.errors import DecodeError


@pytest.mark.parametrize(
    ("text", "namespace", "ack_id"),
    [
        ('2["chat:message",{"message":"x\\ud83d"}]', "/", None),
        ('2/admin,7["chat:message",{"message":"x\\ud83d"}]', "/admin", 7),
        ('212["a",', "/", 12),
    ],
)
def test_bad_event_json_is_an_invalid_event_with_its_header(text: str, namespace: str, ack_id: int | None) -> None:
    decoder = SioDecoder()
    with pytest.raises(InvalidEventPayload) as caught:
        decoder.feed(text)
    assert (caught.value.namespace, caught.value.ack_id) == (namespace, ack_id)
    # The decoder is clean: the next packet decodes.
    assert decoder.feed('2["ok"]') == SioPacket(SioType.EVENT, "/", ["ok"])


@pytest.mark.parametrize("text", ['3["x\\ud83d"', '0{"token":"x\\ud83d"}', '51-["a",{"_placeholder":true'])
def test_bad_json_in_other_packets_stays_a_plain_decode_error(text: str) -> None:
    with pytest.raises(DecodeError) as caught:
        SioDecoder().feed(text)
    assert not isinstance(caught.value, InvalidEventPayload)
