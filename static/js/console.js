// The operator console's live board (SPEC B): the company's calls, parking and extensions as
// the PBX reports them over the socket, and the commands that act on them.
//
// Nothing shown is invented here. The page keeps the last snapshot the server sent and applies
// each message in sequence, exactly as pbx/events.py `apply` does; a gap asks for a new
// snapshot. Commands go out with an id and come back acknowledged or refused with a code; the
// board then changes only because the PBX says so.

const config = JSON.parse(document.getElementById("console-config").textContent);
const T = config.labels;
const me = config.extension;
const $ = (selector, root = document) => root.querySelector(selector);

let view = null; // {nodes: {node: {seq, calls, extensions, registered}}}: the PBX's state as last told
let socket = null;
let connected = false;
let selectedId = null;
let nextCommandId = 1;
let transferOf = null; // the call being transferred from the handset field
let parkArmed = false; // Num . was pressed: a slot digit follows
const pending = new Map(); // command id -> {resolve, reject}
const consultFor = new Map(); // consultation call id -> the held call it is for
const pings = new Map(); // ping id -> time sent

// --- the state, as pbx/events.py defines it ---------------------------------------------------

function apply(message) {
  // Each telephony node has its own stream: a message applies to its node's snapshot.
  const stream = view && message.v === 1 ? view.nodes[message.node] : null;
  if (!stream) return resync();
  if (message.seq <= stream.seq) return; // already in the snapshot
  if (message.seq !== stream.seq + 1) return resync();
  stream.seq = message.seq;
  switch (message.type) {
    case "call.updated":
      stream.calls[message.call.id] = message.call;
      break;
    case "call.ended":
      delete stream.calls[message.call_id];
      consultFor.delete(message.call_id);
      if (selectedId === message.call_id) selectedId = null;
      document.body.dispatchEvent(new Event("call-ended")); // the counters reload (htmx)
      break;
    case "extension.state":
      if (message.state === "idle") delete stream.extensions[message.number];
      else stream.extensions[message.number] = message.state;
      break;
    case "extension.registered": {
      const registered = new Set(stream.registered);
      if (message.registered) registered.add(message.number);
      else registered.delete(message.number);
      stream.registered = [...registered].sort();
      break;
    }
    default:
      return resync();
  }
  scheduleRender();
}

// A burst of messages (a call answered moves several calls and extensions) is drawn once, at
// the next frame; a hidden page, which gets no frames, is drawn a moment later.
let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  const draw = () => {
    renderPending = false;
    render();
  };
  if (document.hidden) setTimeout(draw, 200);
  else requestAnimationFrame(draw);
}

function resync() {
  view = null;
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "resync" }));
}

// --- the socket ------------------------------------------------------------------------------

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/console/`);
  socket.addEventListener("open", () => {
    connected = true;
    render();
  });
  socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
  socket.addEventListener("close", () => {
    connected = false;
    view = null;
    for (const { reject } of pending.values()) reject({ code: "engine_unavailable" });
    pending.clear();
    render();
    setTimeout(connect, 2000);
  });
}

function receive(message) {
  switch (message.type) {
    case "snapshot":
      view = { nodes: message.nodes };
      render();
      break;
    case "ack":
    case "error": {
      const waiting = pending.get(message.id);
      if (waiting) {
        pending.delete(message.id);
        if (message.type === "ack") waiting.resolve(message.result);
        else waiting.reject(message);
      } else if (message.type === "error") {
        toast(T.errors[message.code] || message.detail || T.errors.unknown);
      }
      break;
    }
    case "pong": {
      const sent = pings.get(message.id);
      pings.delete(message.id);
      if (sent !== undefined) showLatency(Math.round(performance.now() - sent));
      break;
    }
    default:
      apply(message);
  }
}

function command(action, fields = {}) {
  const id = nextCommandId++;
  const node = nodeFor(action, fields);
  return new Promise((resolve, reject) => {
    if (!connected) return reject({ code: "engine_unavailable" });
    pending.set(id, { resolve, reject });
    socket.send(JSON.stringify({ type: "command", id, action, ...fields, ...(node ? { node } : {}) }));
  });
}

// The telephony node a command goes to: the one that has the call (or the parked call), or,
// to dial, the one where the operator's phone is registered.
function nodeFor(action, fields) {
  if (fields.call_id) return (callById(fields.call_id) || {}).node;
  if (action === "retrieve") return (parked().find((c) => c.park_slot === fields.slot) || {}).node;
  return myNode();
}

// With several nodes the page picks the first slot free on all of them (each node only
// knows its own parked calls); with one, the node picks.
function parkFields(call, slot) {
  if (slot) return { call_id: call.id, slot };
  if (!view || Object.keys(view.nodes).length < 2) return { call_id: call.id };
  const taken = new Set(parked().map((c) => c.park_slot));
  const free = Array.from({ length: config.park_slots }, (_, i) => i + 1).find((n) => !taken.has(n));
  return free ? { call_id: call.id, slot: free } : { call_id: call.id };
}

async function act(action, fields = {}) {
  try {
    return await command(action, fields);
  } catch (error) {
    toast(T.errors[error.code] || error.detail || T.errors.unknown);
    return null;
  }
}

function ping() {
  if (!connected) return;
  const id = nextCommandId++;
  pings.set(id, performance.now());
  socket.send(JSON.stringify({ type: "ping", id }));
}

// --- reading the state -----------------------------------------------------------------------

const snapshots = () => (view ? Object.values(view.nodes) : []);
const calls = () => snapshots().flatMap((snapshot) => Object.values(snapshot.calls));
const callById = (id) => snapshots().map((snapshot) => snapshot.calls[id]).find(Boolean);
const PRECEDENCE = ["idle", "dialling", "ringing", "talking", "held"]; // as the engine ranks them
const isRegistered = (number) => snapshots().some((snapshot) => snapshot.registered.includes(number));
// The node to dial from: where the operator's phone is registered.
const myNode = () => (view ? Object.keys(view.nodes).find((node) => view.nodes[node].registered.includes(me)) : undefined);
const mine = (call) => call.operator === me;
const byAge = (a, b) => a.started_at - b.started_at;
const incoming = () =>
  calls().filter((c) => c.state === "queued" || (mine(c) && !c.outgoing && c.state !== "parked")).sort(byAge);
const outgoing = () => calls().filter((c) => mine(c) && c.outgoing && c.state !== "parked").sort(byAge);
const parked = () => calls().filter((c) => c.state === "parked");
const active = () => calls().find((c) => mine(c) && c.state === "answered" && !c.held);
const heldCalls = () => calls().filter((c) => mine(c) && c.held && c.state === "answered").sort((a, b) => a.held_since - b.held_since);
const oldestQueued = () => calls().filter((c) => c.state === "queued").sort(byAge)[0];
const who = (call) => call.caller_name || call.caller;
const newest = () => [...outgoing(), ...incoming()].filter(mine).sort((a, b) => b.started_at - a.started_at)[0];

function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, name) => values[name]);
}

function elapsed(since) {
  const seconds = Math.max(0, Math.floor(Date.now() / 1000 - since));
  const m = Math.floor(seconds / 60);
  const s = String(seconds % 60).padStart(2, "0");
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

// --- what each call offers -------------------------------------------------------------------

function actionsOf(call) {
  if (!config.can_command) return [];
  if (call.state === "queued") return ["answer", "reject"];
  if (call.state === "parked") return ["retrieve"];
  if (!mine(call)) return [];
  if (consultFor.has(call.id)) return ["complete", "cancel"];
  if (call.state === "answered") return [call.held ? "resume" : "hold", "transfer", "park", "hangup"];
  return ["hangup"];
}

function run(action, call) {
  switch (action) {
    case "answer":
      return act("answer", { call_id: call.id });
    case "reject":
      return act("reject", { call_id: call.id });
    case "hold":
      return act("hold", { call_id: call.id });
    case "resume":
      return act("resume", { call_id: call.id });
    case "hangup":
      return act("hangup", { call_id: call.id });
    case "park":
      return act("park", parkFields(call));
    case "retrieve":
      return act("retrieve", { slot: call.park_slot });
    case "transfer":
      return startTransfer(call);
    case "complete":
      return completeTransfer(call);
    case "cancel":
      return cancelTransfer(call);
  }
}

// --- transfers -------------------------------------------------------------------------------

function startTransfer(call) {
  transferOf = call.id;
  const field = $("#dial");
  field.value = "";
  field.focus();
  render();
}

function endTransferMode() {
  transferOf = null;
  render();
}

async function transferBlind(number) {
  const callId = transferOf;
  if (!callId || !number) return;
  endTransferMode();
  $("#dial").value = "";
  await act("transfer", { call_id: callId, number });
}

async function transferAnnounced(number) {
  const callId = transferOf;
  if (!callId || !number) return;
  endTransferMode();
  $("#dial").value = "";
  const result = await act("dial", { number }); // the engine holds the caller first
  if (result) {
    consultFor.set(result.call_id, callId);
    render();
  }
}

async function completeTransfer(consult) {
  const heldId = consultFor.get(consult.id);
  if (!heldId) return;
  if (consult.state === "answered") {
    await act("attended_transfer", { call_id: heldId, consult_call_id: consult.id });
  } else {
    // Released while the target still rings: the caller goes there unannounced.
    await act("hangup", { call_id: consult.id });
    await act("transfer", { call_id: heldId, number: consult.dialled });
  }
}

async function cancelTransfer(consult) {
  const heldId = consultFor.get(consult.id);
  consultFor.delete(consult.id);
  await act("hangup", { call_id: consult.id });
  if (heldId) await act("resume", { call_id: heldId });
}

// --- drawing ---------------------------------------------------------------------------------

function render() {
  renderCalls($("#incoming-calls"), incoming());
  renderCalls($("#outgoing-calls"), outgoing());
  $("#incoming-count").textContent = view ? String(calls().filter((c) => c.state === "queued").length || "") : "";
  renderSlots();
  renderExtensions();
  renderStatus();
  renderHandset();
  tick();
}

function renderCalls(list, shown) {
  list.replaceChildren(
    ...shown.map((call) => callItem(call)),
    ...(shown.length ? [] : [Object.assign(document.createElement("li"), { className: "empty", textContent: T.no_calls })]),
  );
}

function callItem(call) {
  const item = document.createElement("li");
  const state = call.held ? "held" : call.state;
  item.className = `call state-${state}${call.id === selectedId ? " selected" : ""}`;
  item.dataset.id = call.id;
  item.tabIndex = 0;
  item.draggable = config.can_command && (call.state === "answered" || call.state === "queued");
  item.setAttribute("aria-selected", String(call.id === selectedId));
  const name = document.createElement("span");
  name.className = "who";
  name.textContent = who(call);
  if (call.caller_name) {
    const number = document.createElement("small");
    number.textContent = ` ${call.caller}`;
    name.append(number);
  }
  const called = document.createElement("span");
  called.className = "called";
  called.textContent = `→ ${call.dialled}`;
  const label = document.createElement("span");
  label.className = "state";
  label.textContent = T.states[state] || state;
  const timer = document.createElement("time");
  timer.className = "timer";
  timer.dataset.since = String(call.held ? call.held_since : call.state_since);
  if (call.held) timer.dataset.alert = "1";
  const buttons = document.createElement("span");
  buttons.className = "actions";
  for (const action of actionsOf(call)) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.action = action;
    button.textContent = T.actions[action];
    buttons.append(button);
  }
  item.setAttribute("aria-label", `${who(call)} ${call.caller_name ? call.caller : ""} → ${call.dialled}, ${label.textContent}`);
  item.append(name, called, label, timer, buttons);
  return item;
}

function renderSlots() {
  const byslot = new Map(parked().map((c) => [c.park_slot, c]));
  for (const button of document.querySelectorAll(".slot")) {
    const slot = Number(button.dataset.slot);
    const call = byslot.get(slot);
    const title = format(T.slot, { slot });
    button.classList.toggle("taken", Boolean(call));
    button.dataset.id = call ? call.id : "";
    button.draggable = Boolean(call) && config.can_command;
    $(".slot-call", button).textContent = call ? who(call) : "";
    const timer = $(".timer", button);
    if (call) {
      timer.dataset.since = String(call.state_since);
      timer.dataset.alert = "1";
    } else {
      delete timer.dataset.since;
      timer.textContent = "";
      timer.classList.remove("alert");
    }
    button.setAttribute("aria-label", call ? `${title}: ${who(call)} ${call.caller}` : `${title}: ${T.slot_empty}`);
  }
}

function presenceOf(extension) {
  if (!extension.monitored) return "disabled";
  if (!connected || !view) return "failed";
  const state = snapshots()
    .map((snapshot) => snapshot.extensions[extension.number] || "idle")
    .reduce((a, b) => (PRECEDENCE.indexOf(b) > PRECEDENCE.indexOf(a) ? b : a), "idle");
  if (state !== "idle") return state;
  if (extension.dnd) return "dnd";
  return isRegistered(extension.number) ? "idle" : "unregistered";
}

function renderExtensions() {
  const filter = transferOf ? "" : $("#dial").value.trim().toLowerCase();
  const list = $("#extensions");
  list.replaceChildren(
    ...config.extensions
      .filter((e) => !filter || e.number.includes(filter) || e.name.toLowerCase().includes(filter))
      .map((extension) => {
        const presence = presenceOf(extension);
        const item = document.createElement("li");
        item.className = `extension dropzone presence-${presence}`;
        item.dataset.number = extension.number;
        const button = document.createElement("button");
        button.type = "button";
        button.className = "extension-button";
        button.dataset.number = extension.number;
        const state = T.presence[presence];
        button.setAttribute("aria-label", `${extension.name} ${extension.number}: ${state}`);
        button.title = format(T.dropped_here, { who: extension.name });
        button.innerHTML = '<span class="dot" aria-hidden="true"></span><span class="name"></span><span class="number"></span><span class="presence"></span>';
        $(".name", button).textContent = extension.name;
        $(".number", button).textContent = extension.number;
        $(".presence", button).textContent = state;
        item.append(button);
        return item;
      }),
  );
}

function renderStatus() {
  const connection = $("#status-connection");
  connection.textContent = connected && view ? T.connected : T.disconnected;
  connection.className = `status-item ${connected && view ? "ok" : "down"}`;
  const phone = $("#status-phone");
  const registered = isRegistered(me);
  phone.textContent = me ? `${registered ? T.phone_registered : T.phone_unregistered} (${me})` : "—";
  phone.className = `status-item ${registered ? "ok" : "down"}`;
  const current = active();
  const status = $("#status-call");
  status.textContent = current ? format(T.talking_to, { who: who(current) }) : T.idle;
  status.dataset.since = current ? String(current.state_since) : "";
}

function renderHandset() {
  const choosing = Boolean(transferOf && callById(transferOf));
  if (transferOf && !choosing) transferOf = null;
  $("#transfer-choice").hidden = !choosing;
  $("#dial-button").hidden = choosing;
  $("#dial-hint").textContent = choosing ? format(T.transfer_of, { who: who(callById(transferOf)) }) : "";
}

function tick() {
  const alertAfter = config.hold_alert_seconds;
  for (const timer of document.querySelectorAll("time.timer[data-since]")) {
    const since = Number(timer.dataset.since);
    timer.textContent = elapsed(since);
    const late = timer.dataset.alert === "1" && Date.now() / 1000 - since >= alertAfter;
    timer.classList.toggle("alert", late);
    timer.title = late ? T.held_alert : "";
  }
  const status = $("#status-call");
  if (status.dataset.since) status.textContent = `${format(T.talking_to, { who: who(active()) })} · ${elapsed(Number(status.dataset.since))}`;
}

function showLatency(ms) {
  const latency = $("#status-latency");
  latency.textContent = `${ms} ms`;
  latency.title = format(T.latency, { ms });
  latency.setAttribute("aria-label", format(T.latency, { ms }));
}

let toastTimer = null;
function toast(text) {
  const box = $("#toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.hidden = true), 6000);
}

// --- the mouse: buttons, clicks, context menu, drag and drop ----------------------------------

document.addEventListener("click", (event) => {
  const menuItem = event.target.closest("#context-menu [data-action]");
  if (menuItem) {
    const { action, number } = menuItem.dataset;
    const call = callById(menuItem.dataset.call);
    closeMenu();
    if (number) {
      if (action === "call") act("dial", { number });
      else setMonitored(number, action === "monitor_on");
    } else if (call) run(action, call);
    return;
  }
  closeMenu();
  const back = event.target.closest("[data-call-back]"); // a missed call in the voicemail panel
  if (back) return act("dial", { number: back.dataset.callBack });
  const button = event.target.closest(".call [data-action]");
  if (button) {
    const call = callById(button.closest(".call").dataset.id);
    if (call) run(button.dataset.action, call);
    return;
  }
  const row = event.target.closest(".call");
  if (row) {
    select(row.dataset.id);
    const call = callById(row.dataset.id);
    if (call && mine(call) && call.held && !consultFor.has(call.id)) act("resume", { call_id: call.id }); // switch to it
    return;
  }
  const slot = event.target.closest(".slot.taken");
  if (slot && config.can_command) return act("retrieve", { slot: Number(slot.dataset.slot) });
  const extension = event.target.closest(".extension-button");
  if (extension) return extensionChosen(extension.dataset.number);
  const key = event.target.closest(".keypad [data-key]");
  if (key) {
    const field = $("#dial");
    field.value += key.dataset.key;
    field.focus();
    renderExtensions();
  }
});

function extensionChosen(number) {
  if (transferOf) {
    $("#dial").value = number;
    $("#transfer-blind").focus();
    return;
  }
  act("dial", { number });
}

function select(callId) {
  selectedId = callId;
  for (const row of document.querySelectorAll(".call")) {
    const selected = row.dataset.id === callId;
    row.classList.toggle("selected", selected);
    row.setAttribute("aria-selected", String(selected));
  }
}

document.addEventListener("contextmenu", (event) => {
  const extension = event.target.closest(".extension-button");
  if (extension) {
    event.preventDefault();
    openExtensionMenu(extension.dataset.number, event.clientX, event.clientY);
    return;
  }
  const row = event.target.closest(".call");
  if (!row) return;
  event.preventDefault();
  select(row.dataset.id);
  openMenu(callById(row.dataset.id), event.clientX, event.clientY);
});

function openMenu(call, x, y) {
  if (!call) return;
  const actions = actionsOf(call);
  if (actions.length) showMenu(actions, { call: call.id }, who(call), x, y);
}

function openExtensionMenu(number, x, y) {
  const extension = config.extensions.find((e) => e.number === number);
  if (!extension) return;
  const actions = [...(config.can_command ? ["call"] : []), extension.monitored ? "monitor_off" : "monitor_on"];
  showMenu(actions, { number }, `${extension.name} ${number}`, x, y);
}

function showMenu(actions, data, label, x, y) {
  const menu = $("#context-menu");
  menu.replaceChildren(
    ...actions.map((action) => {
      const item = document.createElement("li");
      item.setAttribute("role", "menuitem");
      item.tabIndex = -1;
      Object.assign(item.dataset, { action, ...data });
      item.textContent = T.actions[action];
      return item;
    }),
  );
  menu.setAttribute("aria-label", label);
  menu.style.left = `${x}px`;
  menu.style.top = `${y}px`;
  menu.hidden = false;
  menu.firstElementChild.focus();
}

async function setMonitored(number, monitored) {
  const response = await fetch(config.monitoring_url.replace("NUMBER", encodeURIComponent(number)), {
    method: "POST",
    headers: { "X-CSRFToken": config.csrf_token, "Content-Type": "application/x-www-form-urlencoded" },
    body: `monitored=${monitored ? "on" : "off"}`,
    credentials: "same-origin",
  });
  if (!response.ok) return toast(T.errors.unknown);
  config.extensions.find((e) => e.number === number).monitored = monitored;
  renderExtensions();
}

function closeMenu() {
  const menu = $("#context-menu");
  if (!menu.hidden) menu.hidden = true;
}

$("#context-menu").addEventListener("keydown", (event) => {
  const items = [...document.querySelectorAll("#context-menu [role=menuitem]")];
  const at = items.indexOf(document.activeElement);
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    const step = event.key === "ArrowDown" ? 1 : -1;
    items[(at + step + items.length) % items.length].focus();
  } else if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    document.activeElement.click();
  } else if (event.key === "Escape") {
    closeMenu();
  }
  event.stopPropagation();
});

document.addEventListener("dragstart", (event) => {
  const source = event.target.closest(".call, .slot.taken");
  if (!source) return;
  event.dataTransfer.setData("application/x-centralino-call", source.dataset.id);
  event.dataTransfer.effectAllowed = "move";
});

document.addEventListener("dragover", (event) => {
  const zone = event.target.closest(".dropzone");
  if (zone && event.dataTransfer.types.includes("application/x-centralino-call")) {
    event.preventDefault();
    zone.classList.add("drop-over");
  }
});

document.addEventListener("dragleave", (event) => {
  const zone = event.target.closest(".dropzone");
  if (zone) zone.classList.remove("drop-over");
});

document.addEventListener("drop", (event) => {
  const zone = event.target.closest(".dropzone");
  if (!zone) return;
  event.preventDefault();
  zone.classList.remove("drop-over");
  const call = callById(event.dataTransfer.getData("application/x-centralino-call"));
  if (!call) return;
  if (zone.classList.contains("slot")) {
    if (call.state === "answered") act("park", { call_id: call.id, slot: Number(zone.dataset.slot) });
  } else if (zone.id === "outgoing") {
    if (call.state === "parked") act("retrieve", { slot: call.park_slot });
  } else if (zone.dataset.number) {
    if (call.state === "answered" && mine(call)) act("transfer", { call_id: call.id, number: zone.dataset.number });
  }
});

// --- the handset field -----------------------------------------------------------------------

$("#dial-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const typed = $("#dial").value.trim();
  if (!typed) return;
  const number = /^[0-9*#+]+$/.test(typed) ? typed : firstMatch(typed);
  if (!number) return;
  if (transferOf) return transferAnnounced(number);
  $("#dial").value = "";
  act("dial", { number });
  renderExtensions();
});

function firstMatch(text) {
  const wanted = text.toLowerCase();
  const found = config.extensions.find((e) => e.name.toLowerCase().includes(wanted));
  return found ? found.number : null;
}

$("#dial").addEventListener("input", renderExtensions);
$("#transfer-blind").addEventListener("click", () => transferBlind(typedTarget()));
$("#transfer-announced").addEventListener("click", () => transferAnnounced(typedTarget()));
$("#transfer-abort").addEventListener("click", endTransferMode);
$("#help-button").addEventListener("click", () => $("#help").showModal());

function typedTarget() {
  const typed = $("#dial").value.trim();
  return /^[0-9*#+]+$/.test(typed) ? typed : firstMatch(typed);
}

// --- the keyboard (../shared/CONSOLE-KEYS.md) ------------------------------------------------

function typing(target) {
  return target.matches("input, textarea, select, [contenteditable]");
}

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.altKey || (event.ctrlKey && !(event.shiftKey && event.code === "KeyF"))) return;
  const inField = typing(event.target);
  const key = event.key;
  const code = event.code;
  if (parkArmed && !inField) {
    parkArmed = false;
    const current = active();
    const digit = /^Digit\d$|^Numpad\d$/.test(code) ? Number(code.slice(-1)) : null;
    if (current && (digit !== null || key === "Enter" || code === "NumpadEnter")) {
      event.preventDefault();
      act("park", parkFields(current, digit === null ? null : digit === 0 ? 10 : digit));
      return;
    }
  }
  const handled = keyAction(event, inField, key, code);
  if (handled) event.preventDefault();
});

function keyAction(event, inField, key, code) {
  const shift = event.shiftKey;
  if (key === "Escape") return escape(inField);
  if (code === "KeyF" && event.ctrlKey && shift) return focusField();
  // Keys that never type text work everywhere.
  if (code === "NumpadEnter" || (key === "F2" && !shift)) return answerOrPutThrough(inField);
  if (code === "NumpadMultiply" || (key === "F2" && shift)) return holdOrRetrieve();
  if (code === "NumpadDivide" || (key === "F8" && shift)) return swap();
  if (code === "NumpadAdd" || (key === "F4" && !shift)) return release();
  if (code === "NumpadSubtract" || (key === "F8" && !shift)) return cancel();
  if ((key === "F10" && shift) || key === "ContextMenu") return menuForFocused();
  if (inField) return false;
  // On a focused button, link or player (a call's "Hang up", the voicemail panel) Enter and
  // Space press it, as everywhere else: they answer the next call only from the call lists.
  if ((key === "Enter" || key === " ") && event.target.closest("button, a[href], audio, summary, #voicemail")) return false;
  if (key === "Enter" || key === " ") return answerOrPutThrough(false);
  if (key === "?") return $("#help").showModal() || true;
  if (key === "/") return focusField();
  if (code === "NumpadDecimal") return (parkArmed = Boolean(active()));
  if (key === "ArrowDown" || key === "ArrowUp") return moveSelection(key === "ArrowDown" ? 1 : -1);
  if (key === "Delete") return rejectSelected();
  if (key === "t" || key === "T") return transferCurrent();
  if (/^[0-9a-zA-Z*#+]$/.test(key) && !event.metaKey) {
    const field = $("#dial");
    field.focus();
    field.value += key;
    renderExtensions();
    return true;
  }
  return false;
}

function escape(inField) {
  const field = $("#dial");
  const help = $("#help");
  if (help.open) return help.close() || true;
  if (!$("#context-menu").hidden) return closeMenu() || true;
  if (inField && field.value) {
    field.value = "";
    renderExtensions();
    return true;
  }
  if (transferOf) return endTransferMode() || true;
  if (inField) return document.activeElement.blur() || true;
  return false;
}

function focusField() {
  $("#dial").focus();
  return true;
}

function answerOrPutThrough(inField) {
  if (inField) return false; // the form's own submit dials or transfers
  const selected = selectedId && callById(selectedId);
  const call = selected && selected.state === "queued" ? selected : oldestQueued();
  if (call) act("answer", { call_id: call.id });
  return true;
}

function holdOrRetrieve() {
  const current = active();
  if (current) act("hold", { call_id: current.id });
  else if (heldCalls()[0]) act("resume", { call_id: heldCalls()[0].id });
  return true;
}

function swap() {
  const held = heldCalls();
  if (held.length) act("resume", { call_id: held[held.length - 1].id }); // the engine holds the current
  return true;
}

function release() {
  const consult = calls().find((c) => consultFor.has(c.id));
  if (consult) completeTransfer(consult);
  else if (active()) act("hangup", { call_id: active().id });
  return true;
}

function cancel() {
  const consult = calls().find((c) => consultFor.has(c.id));
  if (consult) cancelTransfer(consult);
  else {
    const last = newest();
    if (last && last.state !== "answered") act("hangup", { call_id: last.id }); // a call still ringing
  }
  return true;
}

function menuForFocused() {
  const extension = document.activeElement && document.activeElement.closest(".extension-button");
  if (extension) {
    const box = extension.getBoundingClientRect();
    openExtensionMenu(extension.dataset.number, box.left + 20, box.bottom);
    return true;
  }
  const row = selectedId && document.querySelector(`.call[data-id="${selectedId}"]`);
  if (!row) return false;
  const box = row.getBoundingClientRect();
  openMenu(callById(selectedId), box.left + 20, box.bottom);
  return true;
}

function moveSelection(step) {
  const rows = [...document.querySelectorAll(".call")];
  if (!rows.length) return true;
  const at = rows.findIndex((row) => row.dataset.id === selectedId);
  const next = rows[(at + step + rows.length) % rows.length];
  select(next.dataset.id);
  next.focus();
  return true;
}

function rejectSelected() {
  const call = selectedId && callById(selectedId);
  if (call && call.state === "queued") act("reject", { call_id: call.id });
  return true;
}

function transferCurrent() {
  const current = active() || (selectedId && callById(selectedId));
  if (current && mine(current) && current.state === "answered") startTransfer(current);
  return true;
}

// --- the voicemail panel (an htmx fragment: templates/console/voicemail.html) ----------------

// A reload replaces the players: while a message plays it waits for the message to end.
let voicemailStale = false;
const voicemailPlayers = () => [...document.querySelectorAll("#voicemail-body audio")];
const playing = () => voicemailPlayers().some((audio) => !audio.paused && !audio.ended);

document.body.addEventListener("htmx:beforeRequest", (event) => {
  if (event.detail.elt.id === "voicemail-body" && playing()) {
    event.preventDefault();
    voicemailStale = true;
  }
});

// Media events do not bubble: listen in the capture phase. One message plays at a time.
document.addEventListener("play", (event) => {
  for (const audio of voicemailPlayers()) if (audio !== event.target) audio.pause();
}, true);
document.addEventListener("ended", () => {
  if (voicemailStale && !playing()) {
    voicemailStale = false;
    document.body.dispatchEvent(new Event("voicemail-stale")); // the panel reloads (htmx)
  }
}, true);

// --- go --------------------------------------------------------------------------------------

render();
connect();
setInterval(tick, 1000);
setInterval(ping, 10000);
setTimeout(ping, 1000);
