// RealCast dashboard. Talks to the server over its own Socket.IO (namespace /admin) with the
// small client below: WebSocket transport only, which is all this page needs. No library.
"use strict";

// --- a minimal Engine.IO v4 / Socket.IO v5 client ------------------------------------------
// Engine.IO packets are one WebSocket message each: "0{...}" open, "2" ping (answered "3"),
// "1" close, "4..." a Socket.IO packet: "0/admin,{...}" connected, "4/admin,{...}" refused,
// "1/admin," disconnected by the server, "2/admin,[event, ...args]" an event.
function connectAdmin(auth, on) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(scheme + "//" + location.host + "/socket.io/?EIO=4&transport=websocket");
  const nsp = "/admin";
  ws.onmessage = (message) => {
    const data = message.data;
    if (typeof data !== "string" || data.length === 0) return;  // no binary here
    const kind = data[0];
    if (kind === "0") ws.send("40" + nsp + "," + JSON.stringify(auth));
    else if (kind === "2") ws.send("3");
    else if (kind === "1") ws.close();
    else if (kind === "4") onSocketIo(data.slice(1));
  };
  ws.onclose = () => on.closed();
  function onSocketIo(packet) {
    const type = packet[0];
    let rest = packet.slice(1);
    let name = "/";
    if (rest[0] === "/") {
      const comma = rest.indexOf(",");
      name = comma < 0 ? rest : rest.slice(0, comma);
      rest = comma < 0 ? "" : rest.slice(comma + 1);
    }
    if (name !== nsp) return;
    if (type === "0") on.connected();
    else if (type === "4") { on.refused(JSON.parse(rest)); ws.close(); }
    else if (type === "1") ws.close();
    else if (type === "2") {
      const args = JSON.parse(rest.replace(/^\d+/, ""));  // an ack id may precede the array
      on.event(args[0], args.slice(1));
    }
  }
  return ws;
}

// --- the page -------------------------------------------------------------------------------
const $ = (id) => document.getElementById(id);
const HISTORY = 120;  // chart points: one snapshot a second
const MIN_SPAN = 20;  // the first points spread over at least this many slots, not one edge
const history = [];
let socket = null;
let credentials = null;  // kept in memory only, for reconnecting
let retryTimer = null;

function setState(text, on) {
  $("state").textContent = text;
  $("state").className = "badge " + (on ? "on" : "off");
}

function signIn(event) {
  event.preventDefault();
  const appId = $("app-id").value.trim();
  const secret = $("secret").value.trim();
  // A JWT has three dot-separated parts; an API key is anything else.
  credentials = secret.split(".").length === 3 ? { app_id: appId, token: secret } : { app_id: appId, api_key: secret };
  $("signin-error").textContent = "";
  open();
}

function open() {
  if (socket) {
    socket.onclose = null;  // replaced on purpose: no reconnect
    socket.close();
  }
  setState("connecting", false);
  socket = connectAdmin(credentials, {
    connected() {
      setState("live", true);
      $("signin").hidden = true;
      $("board").hidden = false;
    },
    refused(error) {
      credentials = null;
      setState("signed out", false);
      $("signin").hidden = false;
      $("board").hidden = true;
      $("signin-error").textContent = "Sign-in refused: " + ((error && error.message) || "unknown reason");
    },
    event(name, args) {
      if (name === "dashboard:snapshot") render(args[0]);
    },
    closed() {
      if (!credentials) return;
      setState("reconnecting", false);
      clearTimeout(retryTimer);
      retryTimer = setTimeout(open, 2000);
    },
  });
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
}

function fill(tbodyId, emptyId, items, columns) {
  const body = $(tbodyId);
  body.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    for (const [value, className] of columns(item)) cell(row, value, className);
    body.appendChild(row);
  }
  $(emptyId).hidden = items.length > 0;
}

function render(snap) {
  const totals = snap.totals;
  const connections = snap.connections;
  $("where").textContent = "app " + snap.app_id + (snap.node_id ? " · node " + snap.node_id : "") +
    " · up " + Math.round(snap.uptime) + " s";
  $("total-viewers").textContent = totals.viewers;
  $("total-messages").textContent = totals.messages_per_minute;
  $("total-reactions").textContent = totals.reactions_per_minute;
  $("total-streams").textContent = totals.streams;
  $("total-connections").textContent = connections.authenticated;
  $("by-transport").textContent = Object.entries(connections.by_transport)
    .map(([name, count]) => name + " " + count).join(" · ") || "none";
  fill("streams", "no-streams", snap.streams, (s) => [
    [s.title ? s.stream_id + " — " + s.title : s.stream_id],
    [s.status, "status-" + s.status],
    [String(s.viewers)],
    [String(s.peak_viewers)],
    [String(s.messages_per_minute)],
    [String(s.reactions_per_minute)],
    [s.slow_mode.enabled ? "every " + s.slow_mode.interval + " s" : "off"],
  ]);
  fill("moderation", "no-moderation", snap.moderation, (m) => [
    [new Date(m.at).toLocaleTimeString()],
    [m.action],
    [m.stream_id || ""],
    [m.moderator],
    [m.target || ""],
    [details(m)],
  ]);
  history.push({ viewers: totals.viewers, messages: totals.messages_per_minute });
  if (history.length > HISTORY) history.shift();
  drawChart();
}

function details(m) {
  const parts = [];
  if (m.duration != null) parts.push(m.duration + " s");
  if (m.reason) parts.push(m.reason);
  if (m.message_id) parts.push("message " + m.message_id);
  if (m.enabled != null) parts.push(m.enabled ? "on, every " + m.interval + " s" : "off");
  return parts.join(", ");
}

// Two lines on one scale, newest point at the right edge.
function drawChart() {
  const svg = $("chart");
  const ns = "http://www.w3.org/2000/svg";
  const width = 600, top = 12, bottom = 128;  // the viewBox is 600 x 140
  const max = Math.max(1, ...history.map((p) => Math.max(p.viewers, p.messages)));
  const span = Math.min(HISTORY, Math.max(history.length, MIN_SPAN)) - 1;
  const x = (i) => width - (history.length - 1 - i) * (width / span);
  const y = (v) => bottom - (v / max) * (bottom - top);
  svg.replaceChildren();
  for (const v of [0, max]) {
    const line = document.createElementNS(ns, "line");
    line.setAttribute("class", "grid");
    line.setAttribute("x1", 0); line.setAttribute("x2", width);
    line.setAttribute("y1", y(v)); line.setAttribute("y2", y(v));
    svg.appendChild(line);
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 4); label.setAttribute("y", v === 0 ? y(v) - 3 : y(v) + 11);
    label.textContent = String(v);
    svg.appendChild(label);
  }
  for (const key of ["viewers", "messages"]) {
    const path = document.createElementNS(ns, "polyline");
    path.setAttribute("class", key);
    path.setAttribute("points", history.map((p, i) => x(i).toFixed(1) + "," + y(p[key]).toFixed(1)).join(" "));
    svg.appendChild(path);
  }
}

$("signin").addEventListener("submit", signIn);
