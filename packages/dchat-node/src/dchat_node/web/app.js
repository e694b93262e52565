// dchat in the browser. Every user-supplied string reaches the page through
// textContent or a DOM attribute, never as markup. The session is an HttpOnly
// cookie; every call that changes state sends X-Dchat-App: 1 (see _webapp.py).
"use strict";

const state = { view: "chats", peer: null, group: null, cursor: null, source: null,
  me: null, refreshing: false, again: false, pairing: null };
const attachments = new Map();
const images = new Map();
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(method, path, body, raw) {
  const init = { method, headers: { "X-Dchat-App": "1" }, credentials: "same-origin" };
  if (raw !== undefined) { init.body = raw; init.headers["Content-Type"] = "application/octet-stream"; }
  else if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  const answer = await fetch(path, init);
  if (answer.status === 204) return null;
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    const error = data.error || {};
    throw new ApiError(answer.status, error.code || "error", error.message || answer.statusText);
  }
  return data;
}

function showError(error) {
  if (error && error.status === 401) { loggedOut(); return; }
  $("error").textContent = error ? `Error: ${error.message}` : "";
}

function time(seconds) {
  if (!seconds) return "";
  const date = new Date(seconds * 1000);
  return date.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

function loggedOut() {
  if (state.source) state.source.close();
  document.querySelectorAll("main > section").forEach((s) => { s.hidden = s.id !== "login"; });
  document.querySelector("nav").hidden = true;
  $("live").textContent = "offline";
}

// --- login: the code is in the fragment, never sent as part of a URL ---
async function login() {
  const match = /^#code=([A-Za-z0-9_-]{1,128})$/.exec(location.hash);
  history.replaceState(null, "", "/app/");
  if (match) {
    try { await api("POST", "/app/session", { code: match[1] }); }
    catch (error) { $("login-error").textContent = "That login link is used or expired."; loggedOut(); return false; }
  }
  try { state.me = await api("GET", "/v1/identity"); }
  catch (error) { loggedOut(); return false; }
  $("me").textContent = `Signed in as ${state.me.name}`;
  return true;
}

// --- views ---
function show(view) {
  state.view = view;
  document.querySelectorAll("nav button[data-view]").forEach((b) => {
    if (b.dataset.view === view) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current");
  });
  document.querySelectorAll("main > section").forEach((s) => { s.hidden = s.id !== `view-${view}`; });
  refresh();
}

async function refresh() {
  if (state.refreshing) { state.again = true; return; }
  state.refreshing = true;
  try {
    do {
      state.again = false;
      await refreshRequestCount();
      if (state.view === "chats") await refreshChats();
      else if (state.view === "requests") await refreshRequests();
      else if (state.view === "groups") await refreshGroups();
      else if (state.view === "contacts") await refreshContacts();
      else if (state.view === "devices") await refreshDevices();
    } while (state.again);
    showError(null);
  } catch (error) { showError(error); }
  finally { state.refreshing = false; }
}

async function refreshRequestCount() {
  const { requests } = await api("GET", "/v1/requests");
  const badge = $("requests-count");
  badge.hidden = requests.length === 0;
  badge.textContent = String(requests.length);
  badge.setAttribute("aria-label", `${requests.length} open`);
}

async function refreshChats() {
  const { conversations } = await api("GET", "/v1/conversations");
  const list = $("conversations");
  list.replaceChildren(...conversations.map((c) => {
    const name = c.peer_name || c.peer_id;
    const badge = c.unread ? el("span", { class: "badge", "aria-label": `${c.unread} unread` }, String(c.unread)) : null;
    return el("li", {}, el("button", { type: "button", "data-peer": name,
      "aria-current": state.peer === name ? "true" : "false",
      onclick: () => { state.peer = name; refresh(); } }, el("span", {}, name), badge));
  }));
  if (conversations.length === 0) list.append(el("li", {}, "No conversations yet: add a contact, then write."));
  if (state.peer) await refreshConversation();
}

function marks(message) {
  if (message.direction !== "out") return "";
  if (message.read) return " ✓✓ read";
  if (message.delivered) return " ✓ delivered";
  return " · sent";
}

async function refreshConversation() {
  const data = await api("GET", `/v1/conversations/${encodeURIComponent(state.peer)}?mark_read=true`);
  $("conversation").hidden = false;
  $("conversation-title").textContent = `Conversation with ${state.peer}`;
  const list = $("messages");
  const items = [];
  // The conversation rows do not say which message carries an attachment: ask once per message.
  await Promise.all(data.messages.filter((m) => !attachments.has(m.message_id)).map(async (m) => {
    try { attachments.set(m.message_id, await api("GET", `/v1/attachments/${encodeURIComponent(m.message_id)}`)); }
    catch (error) { if (error.status === 404) attachments.set(m.message_id, null); else throw error; }
  }));
  for (const m of data.messages) {
    m.attachment = attachments.get(m.message_id);
    const who = m.direction === "out" ? "You" : (m.peer_name || state.peer);
    const item = el("li", { class: m.direction, "data-id": m.message_id },
      el("span", { class: "meta" }, `${who}, ${time(m.sent_at)}${marks(m)}`),
      el("span", { class: "text" }, m.text || (m.attachment && m.attachment.caption) || ""));
    if (m.attachment && m.attachment.kind === "image") {
      // one element per image, kept across refreshes so it is fetched once
      if (!images.has(m.message_id)) {
        images.set(m.message_id, el("img", { src: `/v1/attachments/${encodeURIComponent(m.message_id)}/content`,
          alt: `Image ${m.attachment.name || ""}`.trim() }));
      }
      item.append(images.get(m.message_id));
    } else if (m.attachment && m.attachment.kind) {
      item.append(el("a", { href: `/v1/attachments/${encodeURIComponent(m.message_id)}/content`,
        download: m.attachment.name || "attachment" }, `Download ${m.attachment.name || "attachment"}`));
    }
    items.push(item);
  }
  list.replaceChildren(...items);
  list.scrollTop = list.scrollHeight;
}

async function refreshRequests() {
  const { requests } = await api("GET", "/v1/requests");
  const list = $("requests");
  list.replaceChildren(...requests.map((r) => {
    const id = `accept-name-${r.identity_id}`;
    const input = el("input", { id, type: "text", maxlength: "64", value: r.name || "" });
    return el("li", { "data-request": r.identity_id },
      el("p", {}, `${r.name || r.identity_id} wrote ${r.messages} message(s), first ${time(r.first_ms / 1000)}: `,
        el("q", {}, r.preview || "")),
      el("label", { for: id }, "Save as"), input,
      el("button", { type: "button", onclick: () => act(() =>
        api("POST", `/v1/requests/${encodeURIComponent(r.identity_id)}/accept`, { name: input.value || r.identity_id.slice(0, 12) })) }, "Accept"),
      el("button", { type: "button", onclick: () => act(() =>
        api("POST", `/v1/requests/${encodeURIComponent(r.identity_id)}/ignore`)) }, "Refuse"));
  }));
  if (requests.length === 0) list.append(el("li", {}, "No open requests."));
}

async function refreshGroups() {
  const { groups } = await api("GET", "/v1/groups");
  $("groups").replaceChildren(...groups.map((g) => {
    const gid = g.group_id || g.id;
    return el("li", {}, el("button", { type: "button", "data-group": gid,
      onclick: () => { state.group = gid; refresh(); } }, el("span", {}, g.title || gid),
      g.status === "invited" ? el("span", { class: "badge" }, "invited") : null));
  }));
  if (!state.group) return;
  const info = await api("GET", `/v1/groups/${encodeURIComponent(state.group)}`);
  $("group").hidden = false;
  $("group-name").textContent = info.title || state.group;
  const members = (info.members || []).map((m) => `${m.contact || m.name}${m.role === "admin" ? " (admin)" : ""}`);
  $("group-members").textContent = members.length ? `Members: ${members.join(", ")}` : "";
  const { messages } = await api("GET", `/v1/groups/${encodeURIComponent(state.group)}/messages`);
  const names = new Map((info.members || []).map((m) => [m.identity_id, m.contact || m.name]));
  $("group-messages").replaceChildren(...messages.map((m) => el("li", { class: m.direction === "out" ? "out" : "in" },
    el("span", { class: "meta" }, `${m.direction === "out" ? "You" : (names.get(m.by) || m.by || "")}, ${time(m.sent_at_ms / 1000)}`),
    el("span", { class: "text" }, m.text || ""))));
  const invited = info.status === "invited";
  $("group-join").hidden = !invited;
  $("group-compose").hidden = invited || info.status === "left";
  $("group-invite").hidden = invited || info.status === "left";
  const { contacts } = await api("GET", "/v1/contacts");
  $("group-invitee").replaceChildren(...contacts.map((c) => el("option", { value: c.name }, c.name)));
}

async function drawQr(target, text) {
  const { size, rows } = await api("POST", "/v1/app/qr", { text });
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const full = size + 8;
  svg.setAttribute("viewBox", `0 0 ${full} ${full}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "QR code");
  svg.setAttribute("shape-rendering", "crispEdges");
  const bg = document.createElementNS(ns, "rect");
  bg.setAttribute("width", full); bg.setAttribute("height", full); bg.setAttribute("fill", "#fff");
  svg.append(bg);
  let d = "";
  rows.forEach((row, y) => { for (let x = 0; x < row.length; x++) if (row[x] === "1") d += `M${x + 4} ${y + 4}h1v1h-1z`; });
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d); path.setAttribute("fill", "#000");
  svg.append(path);
  target.replaceChildren(svg);
}

async function refreshContacts() {
  const { contacts } = await api("GET", "/v1/contacts");
  $("contacts").replaceChildren(...contacts.map((c) => el("li", {}, `${c.name} (${c.identity_id.slice(0, 16)}…) `,
    el("button", { type: "button", "aria-label": `Write to ${c.name}`,
      onclick: () => { state.peer = c.name; show("chats"); } }, "Write"))));
  if (contacts.length === 0) $("contacts").append(el("li", {}, "No contacts yet."));
  if ($("own-card").value !== state.me.card) {
    $("own-card").value = state.me.card;
    await drawQr($("own-qr"), state.me.card);
  }
}

async function refreshDevices() {
  const { devices } = await api("GET", "/v1/devices");
  $("devices").replaceChildren(...devices.map((d) =>
    el("li", {}, typeof d === "string" ? d : `${d.name || "device"} ${d.device_key ? d.device_key.slice(0, 16) : ""}`)));
  if (devices.length === 0) $("devices").append(el("li", {}, "Only this device."));
  if (state.pairing) await refreshPairing();
}

async function refreshPairing() {
  let p;
  try { p = await api("GET", "/v1/devices/pairing"); }
  catch (error) { if (error.status === 404) { state.pairing = null; $("pairing").hidden = true; return; } throw error; }
  $("pairing").hidden = false;
  $("pairing-code").textContent = p.code || "";
  $("pairing-state").textContent = p.error ? `(${p.state}: ${p.error})` : `(${p.state})`;
  if (p.qr && state.pairing !== p.qr) { state.pairing = p.qr; await drawQr($("pairing-qr"), p.qr); }
  $("pairing-sas-line").hidden = !p.sas;
  $("pairing-sas").textContent = Array.isArray(p.sas) ? p.sas.join(" ") : (p.sas || "");
  $("pairing-confirm").hidden = !p.sas || p.state === "done";
  const active = !["done", "failed", "aborted", "expired"].includes(p.state);
  if (active) setTimeout(() => { if (state.view === "devices" && state.pairing) refresh(); }, 1000);
}

async function act(call) {
  try { await call(); showError(null); } catch (error) { showError(error); }
  await refresh();
}

// --- live updates: the event stream, resumed from the last cursor ---
function follow() {
  const url = state.cursor === null ? "/v1/events" : `/v1/events?after=${state.cursor}`;
  const source = new EventSource(url);
  state.source = source;
  const seen = (event) => {
    if (event.lastEventId) state.cursor = Number(event.lastEventId);
    refresh();
  };
  source.onopen = () => { $("live").textContent = "live"; };
  // Every kind that changes what a view shows (typing is not shown, so it is not followed).
  const kinds = ["message", "request", "receipt", "edit", "delete", "reaction", "timer",
    "group_message", "group_update", "payment", "expired", "status"];
  for (const kind of kinds) {
    source.addEventListener(kind, seen);
  }
  source.onmessage = seen;
  source.addEventListener("error", (event) => {
    $("live").textContent = "reconnecting";
    if (event.data) { source.close(); state.cursor = null; setTimeout(follow, 2000); }  // cursor_expired
    else if (source.readyState === EventSource.CLOSED) setTimeout(follow, 2000);
  });
}

function wire() {
  document.querySelectorAll("nav button[data-view]").forEach((b) => b.addEventListener("click", () => show(b.dataset.view)));
  $("logout").addEventListener("click", async () => { await api("POST", "/app/logout").catch(() => null); loggedOut(); });
  $("compose").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("compose-text").value;
    if (!text.trim() || !state.peer) return;
    act(async () => { await api("POST", "/v1/messages", { to: state.peer, text }); $("compose-text").value = ""; });
  });
  $("compose-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("compose").requestSubmit(); }
  });
  $("attach-file").addEventListener("change", () => {
    const file = $("attach-file").files[0];
    const preview = $("attach-preview");
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.hidden = !(file && file.type.startsWith("image/"));
    if (!preview.hidden) preview.src = URL.createObjectURL(file);
  });
  $("attach").addEventListener("submit", (event) => {
    event.preventDefault();
    const file = $("attach-file").files[0];
    if (!file || !state.peer) return;
    const kind = file.type.startsWith("image/") ? "image" : file.type.startsWith("video/") ? "video"
      : file.type.startsWith("audio/") ? "audio" : "document";
    const query = new URLSearchParams({ to: state.peer, kind, type: file.type || "application/octet-stream",
      name: file.name, caption: $("attach-caption").value });
    act(async () => {
      await api("POST", `/v1/attachments?${query}`, undefined, file);
      $("attach").reset(); $("attach-preview").hidden = true;
    });
  });
  $("group-create").addEventListener("submit", (event) => {
    event.preventDefault();
    act(async () => {
      const made = await api("POST", "/v1/groups", { title: $("group-title").value });
      state.group = made.group_id; $("group-title").value = "";
    });
  });
  $("group-compose").addEventListener("submit", (event) => {
    event.preventDefault();
    act(async () => {
      await api("POST", `/v1/groups/${encodeURIComponent(state.group)}/messages`, { text: $("group-text").value });
      $("group-text").value = "";
    });
  });
  $("group-join").addEventListener("click", () =>
    act(() => api("POST", `/v1/groups/${encodeURIComponent(state.group)}/join`)));
  $("group-invite").addEventListener("submit", (event) => {
    event.preventDefault();
    act(() => api("POST", `/v1/groups/${encodeURIComponent(state.group)}/members`, { contact: $("group-invitee").value }));
  });
  $("contact-add").addEventListener("submit", (event) => {
    event.preventDefault();
    act(async () => {
      await api("POST", "/v1/contacts", { name: $("contact-name").value, card: $("contact-card").value.trim() });
      $("contact-add").reset();
    });
  });
  $("link-start").addEventListener("click", () => act(async () => {
    const p = await api("POST", "/v1/devices/link", {});
    state.pairing = "started"; $("pairing").hidden = false;
    $("pairing-code").textContent = p.code || "";
  }));
  $("pairing-confirm").addEventListener("click", () => act(() => api("POST", "/v1/devices/pairing/confirm", {})));
  $("pairing-abort").addEventListener("click", () => act(async () => {
    await api("POST", "/v1/devices/pairing/abort", {}); state.pairing = null; $("pairing").hidden = true;
  }));
}

document.addEventListener("DOMContentLoaded", async () => {
  wire();
  if (await login()) { show("chats"); follow(); }
});
