// Interop scenarios: the stock socket.io-client (4.8) against tests/apps/interop.py.
//
//   node interop.js <base-url> <scenario> <mode>
//
// mode: "default" (polling, then upgrade to WebSocket), "websocket" (WebSocket only),
//       "polling" (long-polling only).
// Prints one JSON line {"ok": true, "scenario", "mode", "details"} and exits 0, or
// {"ok": false, "error", ...} and exits 1. The "reconnect" scenario first prints
// {"event": "ready"} and waits for the test to restart the server. Driven by tests/integration/engineio/test_interop_js.py.
'use strict';

const util = require('util');
const { io, Manager } = require('socket.io-client');

const [baseUrl, scenario, mode = 'default'] = process.argv.slice(2);
const OVERALL_TIMEOUT_MS = 15000;
const STEP_TIMEOUT_MS = 4000;
const details = {};
const sockets = [];

function finish(ok, error) {
  const out = { ok, scenario, mode, details };
  if (error) out.error = String(error && error.stack ? error.stack : error);
  process.stdout.write(JSON.stringify(out) + '\n');
  for (const s of sockets) {
    try { s.io.opts.reconnection = false; s.disconnect(); } catch (_) { /* ignore */ }
  }
  process.exit(ok ? 0 : 1);
}

setTimeout(() => finish(false, `overall timeout (${OVERALL_TIMEOUT_MS} ms)`), OVERALL_TIMEOUT_MS);

function transportOpts() {
  if (mode === 'websocket') return { transports: ['websocket'] };
  if (mode === 'polling') return { transports: ['polling'] };
  if (mode === 'default') return {};
  throw new Error(`unknown mode ${mode}`);
}

function connectSocket(nsp = '/', extra = {}) {
  const s = io(baseUrl + (nsp === '/' ? '' : nsp), {
    forceNew: true,
    reconnection: false,
    timeout: STEP_TIMEOUT_MS,
    ...transportOpts(),
    ...extra,
  });
  trackUpgrades(s.io);
  sockets.push(s);
  return s;
}

function withTimeout(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

function once(emitter, event, what, ms = STEP_TIMEOUT_MS) {
  return withTimeout(new Promise((resolve) => emitter.once(event, (...args) => resolve(args))), what || event, ms);
}

function connected(socket) {
  return withTimeout(new Promise((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (err) => reject(new Error(`connect_error: ${err.message} ${JSON.stringify(err.data)}`)));
  }), 'connect');
}

// In default mode every engine connection must start on polling and then fire 'upgrade'.
// trackUpgrades() hooks each engine a manager opens (reconnections open new ones).
const upgradedEngines = new WeakSet();
function trackUpgrades(manager) {
  const hooked = new WeakSet();
  const hook = () => {
    const engine = manager.engine;
    if (!engine || hooked.has(engine)) return;
    hooked.add(engine);
    engine.once('upgrade', (transport) => {
      if (transport.name === 'websocket') upgradedEngines.add(engine);
    });
  };
  hook();
  manager.on('open', hook);
  return manager;
}

// Resolves once the socket's engine runs on the transport the mode asks for.
function onFinalTransport(socket) {
  if (mode !== 'default') return Promise.resolve();
  const engine = socket.io.engine;
  return withTimeout(new Promise((resolve) => {
    const check = () => (upgradedEngines.has(engine) ? resolve() : setTimeout(check, 10));
    check();
  }), 'upgrade event to websocket').then(() => { details.upgraded = true; });
}

function eq(actual, expected, what) {
  if (!util.isDeepStrictEqual(actual, expected)) {
    throw new Error(`${what}: expected ${util.inspect(expected, { depth: 6 })}, got ${util.inspect(actual, { depth: 6 })}`);
  }
}

function toBuf(x) {
  if (Buffer.isBuffer(x)) return x;
  if (x instanceof ArrayBuffer) return Buffer.from(x);
  if (ArrayBuffer.isView(x)) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  throw new Error(`not binary: ${util.inspect(x)}`);
}

async function ready(nsp = '/', extra = {}) {
  const s = connectSocket(nsp, extra);
  await connected(s);
  await onFinalTransport(s);
  const name = s.io.engine.transport.name;
  details.transport = name;
  const expected = mode === 'polling' ? 'polling' : 'websocket';
  eq(name, expected, 'transport in use');
  return s;
}

const scenarios = {
  // connect (and upgrade), events with acks both ways
  async events() {
    const s = await ready('/', { auth: { token: 'good', user: 'alice' } });
    const echoed = once(s, 'echo', 'echo event');
    const ack = await withTimeout(s.emitWithAck('echo', 'a', 1, { b: [true, null] }, 'ü✓'), 'echo ack');
    eq(ack, 'a', 'first ack arg'); // emitWithAck resolves with the first argument
    eq(await echoed, ['a', 1, { b: [true, null] }, 'ü✓'], 'echo event args');
    // several ack arguments, via the callback form
    const all = await withTimeout(new Promise((resolve) => s.emit('echo', 'x', { y: 2 }, (...args) => resolve(args))), 'echo ack (callback)');
    eq(all, ['x', { y: 2 }], 'all ack args');
    // server -> client call with an ack
    s.on('question', (n, cb) => cb(n + 1, 'from-js'));
    const answer = once(s, 'answer', 'answer event');
    s.emit('ask');
    eq(await answer, [43, 'from-js'], 'answer args');
    details.events = 'ok';
    finish(true);
  },

  async auth() {
    const authPayload = { token: 'good', user: 'alice', n: [1, 2.5], nested: { ok: true } };
    const s = await ready('/', { auth: authPayload });
    const me = await withTimeout(s.emitWithAck('whoami'), 'whoami ack');
    eq(me, authPayload, 'auth seen by the server');
    finish(true);
  },

  async refused() {
    const s = connectSocket('/', { auth: { token: 'bad' } });
    const err = await withTimeout(new Promise((resolve, reject) => {
      s.once('connect', () => reject(new Error('connected although refused')));
      s.once('connect_error', resolve);
    }), 'connect_error');
    details.message = err.message;
    details.data = err.data;
    eq(err.message, 'not authorized', 'connect_error message');
    eq(err.data, { reason: 'bad token' }, 'connect_error data');
    eq(s.connected, false, 'socket.connected');
    finish(true);
  },

  async binary() {
    const s = await ready();
    const bin = Buffer.from([0, 1, 2, 253, 254, 255]);
    const echoed = once(s, 'echo', 'echo event');
    const ack = await withTimeout(new Promise((resolve) =>
      s.emit('echo', bin, { nested: { data: Buffer.from('héllo') }, list: ['t', Buffer.alloc(0)] }, (...args) => resolve(args))), 'binary ack');
    const check = (args, what) => {
      eq(toBuf(args[0]).equals(bin), true, `${what}: top-level buffer`);
      eq(toBuf(args[1].nested.data).toString(), 'héllo', `${what}: nested buffer`);
      eq(args[1].list[0], 't', `${what}: text next to binary`);
      eq(toBuf(args[1].list[1]).length, 0, `${what}: empty buffer`);
    };
    check(ack, 'ack');
    check(await echoed, 'echo event');
    // a client ack carrying binary
    s.on('question', (n, cb) => cb(Buffer.from([n])));
    const answer = once(s, 'answer', 'answer event');
    s.emit('ask');
    const [got] = await answer;
    eq([...toBuf(got)], [42], 'binary answer');
    finish(true);
  },

  async namespace() {
    // two namespaces multiplexed over one engine connection
    const manager = trackUpgrades(new Manager(baseUrl, { reconnection: false, timeout: STEP_TIMEOUT_MS, ...transportOpts() }));
    const main = manager.socket('/', { auth: { who: 'main' } });
    const second = manager.socket('/second', { auth: { who: 'second' } });
    sockets.push(main, second);
    await Promise.all([connected(main), connected(second)]);
    await onFinalTransport(main);
    eq(main.io.engine, second.io.engine, 'one shared engine');
    eq(await withTimeout(second.emitWithAck('whoami'), 'whoami /second'), { who: 'second' }, 'auth in /second');
    eq(await withTimeout(main.emitWithAck('whoami'), 'whoami /'), { who: 'main' }, 'auth in /');
    const echoed = once(second, 'echo', 'echo in /second');
    let leaked = false;
    main.on('echo', () => { leaked = true; });
    eq(await withTimeout(second.emitWithAck('echo', 'in-second'), 'echo /second'), 'in-second', 'ack in /second');
    eq(await echoed, ['in-second'], 'echo event in /second');
    eq(leaked, false, 'event leaked into /');
    // a refusal in /second (on its own connection: one manager holds one socket per namespace)
    const other = new Manager(baseUrl, { reconnection: false, ...transportOpts() }).socket('/second', { auth: { token: 'bad' } });
    sockets.push(other);
    const err = await once(other, 'connect_error', 'connect_error in /second');
    eq(err[0].message, 'not authorized', 'refusal message in /second');
    eq(err[0].data, { reason: 'bad token' }, 'refusal data in /second');
    // leaving /second keeps / working
    second.disconnect();
    eq(await withTimeout(main.emitWithAck('echo', 'still'), 'echo / after leaving /second'), 'still', 'main after leave');
    details.transport = main.io.engine.transport.name;
    finish(true);
  },

  async unknown_namespace() {
    const s = connectSocket('/nope');
    const [err] = await once(s, 'connect_error', 'connect_error for /nope');
    eq(err.message, 'Invalid namespace', 'message');
    finish(true);
  },

  async rooms() {
    const [a, b, c] = await Promise.all([ready(), ready(), ready()]);
    eq(await withTimeout(a.emitWithAck('join', { room: 'r1' }), 'join a'), true, 'join ack');
    eq(await withTimeout(b.emitWithAck('join', { room: 'r1' }), 'join b'), true, 'join ack');
    let cGot = false;
    c.on('room_msg', () => { cGot = true; });
    const ga = once(a, 'room_msg', 'room_msg at a');
    const gb = once(b, 'room_msg', 'room_msg at b');
    const n = await withTimeout(a.emitWithAck('to_room', { room: 'r1', msg: 'hi room' }), 'to_room ack');
    eq(n, 2, 'recipients');
    eq(await ga, ['hi room'], 'a got');
    eq(await gb, ['hi room'], 'b got');
    await new Promise((r) => setTimeout(r, 200));
    eq(cGot, false, 'non-member got the room message');
    finish(true);
  },

  // drop_me: the server disconnects the socket and closes the engine connection. The CONNECT
  // side sees a server-side disconnect ("io server disconnect"), which is final by design.
  async drop() {
    const s = await ready('/', { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
    const disconnected = once(s, 'disconnect', 'disconnect after drop_me');
    let reconnecting = false;
    s.io.on('reconnect_attempt', () => { reconnecting = true; });
    s.emit('drop_me');
    const [reason] = await disconnected;
    details.disconnect_reason = reason;
    eq(reason, 'io server disconnect', 'disconnect reason');
    await new Promise((r) => setTimeout(r, 400));
    eq(reconnecting || s.connected, false, 'reconnected after a server disconnect');
    finish(true);
  },

  // The test restarts the server after the "ready" line; the client must come back on its own.
  async reconnect() {
    const s = await ready('/', {
      auth: { token: 'good', user: 'bob' },
      reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200, randomizationFactor: 0,
    });
    const firstId = s.id;
    const disconnected = once(s, 'disconnect', 'disconnect when the server stops', 10000);
    const reconnected = once(s.io, 'reconnect', 'manager reconnect', 10000);
    process.stdout.write(JSON.stringify({ event: 'ready', id: firstId }) + '\n');
    const [reason] = await disconnected;
    details.disconnect_reason = reason;
    await reconnected;
    if (!s.connected) await connected(s);
    await onFinalTransport(s);
    eq(s.id !== firstId, true, 'new socket id after reconnect');
    eq(await withTimeout(s.emitWithAck('whoami'), 'whoami after reconnect'), { token: 'good', user: 'bob' }, 'auth re-sent');
    eq(await withTimeout(s.emitWithAck('echo', 'after reconnect'), 'echo after reconnect'), 'after reconnect', 'echo');
    details.transport = s.io.engine.transport.name;
    finish(true);
  },

  // kick_me: a namespace-level server disconnect ("41"); the engine connection stays open.
  async kick() {
    const manager = trackUpgrades(new Manager(baseUrl, { reconnection: true, reconnectionDelay: 100, timeout: STEP_TIMEOUT_MS, ...transportOpts() }));
    const main = manager.socket('/');
    const second = manager.socket('/second');
    sockets.push(main, second);
    await Promise.all([connected(main), connected(second)]);
    const engine = manager.engine;
    const disconnected = once(main, 'disconnect', 'disconnect after kick_me');
    main.emit('kick_me');
    const [reason] = await disconnected;
    details.disconnect_reason = reason;
    eq(reason, 'io server disconnect', 'disconnect reason');
    // the other namespace goes on over the same engine connection
    eq(await withTimeout(second.emitWithAck('echo', 'second alive'), 'echo in /second'), 'second alive', 'echo in /second');
    eq(manager.engine, engine, 'same engine connection');
    // a server-side namespace disconnect is final: no automatic reconnection
    await new Promise((r) => setTimeout(r, 400));
    eq(main.connected, false, 'reconnected after a server disconnect');
    finish(true);
  },
};

(async () => {
  const run = scenarios[scenario];
  if (!run) throw new Error(`unknown scenario ${scenario}`);
  await run();
})().catch((err) => finish(false, err));
