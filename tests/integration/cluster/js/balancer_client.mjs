// Several stock socket.io-client connections through a balancer: each authenticates in the
// handshake, joins the stream, sends chat messages and waits for each of them to come back.
// Prints one JSON line {"ok": true, "clients": [{"sid", "transport", "upgraded"}]} and exits 0,
// or {"ok": false, "error": "..."} and exits 1.
//
// Usage: node balancer_client.mjs URL MODE   (MODE: polling | default, i.e. polling then upgrade)
// Environment: TOKENS, a JSON list of JWTs, one per client; APP_ID.
import { io } from 'socket.io-client';

const [url, mode] = process.argv.slice(2);
const tokens = JSON.parse(process.env.TOKENS);
const STREAM = 'stream_qwe456';
const ROUNDS = 3;

function within(ms, promise, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)),
  ]);
}

async function client(token, index) {
  const socket = io(url, {
    auth: { token, app_id: process.env.APP_ID },
    transports: mode === 'polling' ? ['polling'] : ['polling', 'websocket'],
    upgrade: mode !== 'polling',
    reconnection: false,
  });
  const received = [];
  const waiters = [];
  let upgraded = false;
  socket.io.on('open', () => socket.io.engine.on('upgrade', () => { upgraded = true; }));
  socket.on('chat:message', (data) => {
    received.push(data.message);
    waiters.forEach((wake) => wake());
  });
  const authenticated = new Promise((resolve, reject) => {
    socket.on('authenticated', resolve);
    socket.on('connect_error', (err) => reject(new Error(`connect_error: ${err.message}`)));
    socket.on('disconnect', (reason) => reject(new Error(`disconnected: ${reason}`)));
  });
  try {
    await within(8000, authenticated, `client ${index} authenticated`);
    const joined = await socket.timeout(5000).emitWithAck('chat:join', { stream_id: STREAM });
    if (!joined.ok) throw new Error(`chat:join refused: ${JSON.stringify(joined)}`);
    for (let round = 0; round < ROUNDS; round++) {
      const text = `js ${mode} client ${index} round ${round}`;
      const ack = await socket.timeout(5000).emitWithAck('chat:message', { stream_id: STREAM, message: text });
      if (!ack.ok) throw new Error(`chat:message refused: ${JSON.stringify(ack)}`);
      await within(5000, new Promise((resolve) => {
        const check = () => { if (received.includes(text)) resolve(); };
        waiters.push(check);
        check();
      }), `client ${index} to receive its own message`);
    }
    if (mode !== 'polling') {
      await within(5000, new Promise((resolve) => {
        const check = () => (socket.io.engine.transport.name === 'websocket' ? resolve() : setTimeout(check, 20));
        check();
      }), `client ${index} to upgrade`);
    }
    return { sid: socket.io.engine.id, transport: socket.io.engine.transport.name, upgraded };
  } finally {
    socket.disconnect();
  }
}

try {
  const clients = await Promise.all(tokens.map((token, index) => client(token, index)));
  console.log(JSON.stringify({ ok: true, clients }));
  process.exit(0);
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err && err.stack ? err.stack : err) }));
  process.exit(1);
}
