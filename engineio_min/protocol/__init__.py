"""Sans-I/O session state machines for Engine.IO 4 and Socket.IO 5.

Layer: protocol (between the codec below and the asyncio glue above). Imports only the
standard library, ``engineio_min.codec``, ``engineio_min.errors`` and itself: no asyncio,
no sockets, no clock, no logging (``tests/unit/protocol/test_layering.py`` holds it).

Packets and the current time come in as arguments; packets to send, events for the
application and the next deadline come out. The asyncio layer (``engineio_min.engine``,
``engineio_min.socketio``) only carries bytes between these machines and the transports and
arms the timers they ask for, so every rule of the protocol can be tested without a socket
and fuzzed with hypothesis (``tests/unit/protocol``).

Modules:

* ``reasons``: why a session or a namespace ended (``CloseReason``), reported once.
* ``engine``: one Engine.IO server session (``EioSessionMachine``: polling, upgrade, heartbeat, close).
* ``socketio``: the Socket.IO side of one session (``SioMachine``: namespaces, acks, attachments).
"""
