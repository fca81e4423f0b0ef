// cloudgw dashboard: plain JavaScript, no build step, nothing loaded from outside the controller.
// The token lives in sessionStorage and travels only in the Authorization header (also for the live
// event stream, which is read with fetch rather than EventSource for that reason).
"use strict";

const state = { token: sessionStorage.getItem("cloudgw-token"), role: null, view: null, data: {},
  selected: null, refreshTimer: null, eventsAbort: null };

// ---------------------------------------------------------------------------------------------
// helpers
function mtuNote(t) {
  if (!t.mtu) return "";
  const path = t.path_mtu ? `, path ${t.path_mtu} (${esc(t.mtu_source)})` : "";
  const warn = t.mtu_warning ? ` <span class="warn" data-testid="mtu-warning" title="${esc(t.mtu_warning)}">⚠ MTU lowered</span>` : "";
  return `, MTU ${t.mtu}${path}${warn}`;
}

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function $(selector, root = document) { return root.querySelector(selector); }
function $$(selector, root = document) { return Array.from(root.querySelectorAll(selector)); }
function bytes(value) {
  if (value === null || value === undefined) return "-";
  let size = Number(value);
  for (const unit of ["B", "KiB", "MiB", "GiB", "TiB"]) {
    if (size < 1024 || unit === "TiB") return unit === "B" ? `${size} B` : `${size.toFixed(1)} ${unit}`;
    size /= 1024;
  }
  return String(value);
}
function rate(bps) {
  if (bps >= 1e9) return `${(bps / 1e9).toFixed(2)} Gbit/s`;
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(1)} Mbit/s`;
  if (bps >= 1e3) return `${(bps / 1e3).toFixed(1)} kbit/s`;
  return `${Math.round(bps)} bit/s`;
}
function ago(timestamp) {
  if (!timestamp) return "never";
  const seconds = (Date.now() - new Date(timestamp).getTime()) / 1000;
  if (seconds < 90) return `${Math.max(0, Math.round(seconds))}s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)}m ago`;
  return `${(seconds / 3600).toFixed(1)}h ago`;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || (body.problems || []).map((p) => `${p.field}: ${p.message}`).join("; "))) || `HTTP ${status}`);
    this.status = status; this.body = body || {};
  }
}

async function api(method, path, body) {
  const response = await fetch(path, { method, headers: { Authorization: `Bearer ${state.token}`,
    "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (response.status === 401) { signOut("Your token is no longer valid."); throw new ApiError(401, data); }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// ---------------------------------------------------------------------------------------------
// sign in and out
async function signIn(token) {
  state.token = token;
  const who = await api("GET", "/api/v1/whoami");
  if (!["admin", "readonly"].includes(who.role)) throw new ApiError(403, { message: "this token cannot use the dashboard" });
  sessionStorage.setItem("cloudgw-token", token);
  state.role = who.role;
  document.body.classList.toggle("readonly", who.role !== "admin");
  $("#whoami").textContent = `${who.name} (${who.role})`;
  $("#login").hidden = true; $("#app").hidden = false;
  show(location.hash.slice(1) || "topology");
  startEvents();
}

function signOut(message) {
  sessionStorage.removeItem("cloudgw-token");
  state.token = null;
  if (state.eventsAbort) state.eventsAbort.abort();
  $("#app").hidden = true; $("#login").hidden = false;
  $('[data-for="token"]').textContent = message || "";
}

$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = event.target.token.value.trim();
  $('[data-for="token"]').textContent = "";
  try { await signIn(token); } catch (error) {
    state.token = null;
    $('[data-for="token"]').textContent = error.status === 401 ? "That token was refused." : error.message;
  }
});
$("#logout").addEventListener("click", () => signOut(""));

// ---------------------------------------------------------------------------------------------
// live updates: `revision` on every change, `tick` every 2 s
async function startEvents() {
  if (state.eventsAbort) state.eventsAbort.abort();
  const controller = new AbortController();
  state.eventsAbort = controller;
  while (!controller.signal.aborted && state.token) {
    try {
      const response = await fetch("/api/v1/events", { headers: { Authorization: `Bearer ${state.token}` }, signal: controller.signal });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      $("#live").classList.add("on");
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const chunk = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          const event = (chunk.match(/^event: (.*)$/m) || [])[1];
          const data = JSON.parse((chunk.match(/^data: (.*)$/m) || [null, "{}"])[1]);
          if (event === "revision") { $("#revision").textContent = data.revision; scheduleRefresh(0); }
          if (event === "tick") scheduleRefresh(0);
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    $("#live").classList.remove("on");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function scheduleRefresh(delay) {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refresh, delay);
}

// ---------------------------------------------------------------------------------------------
// views
const VIEWS = {};

function show(name) {
  if (!VIEWS[name]) name = "topology";
  state.view = name; state.selected = null;
  $$("#tabs a").forEach((a) => a.classList.toggle("active", a.dataset.view === name));
  const main = $("#main");
  main.replaceChildren($(`#view-${name}`).content.cloneNode(true));
  $$("form[data-kind]", main).forEach(bindForm);
  bindRowActions(main);
  const mounted = VIEWS[name].mount ? VIEWS[name].mount(main) : null;
  Promise.resolve(mounted).catch((error) => { if (error.status !== 401) console.error(error); });
  refresh();
}
window.addEventListener("hashchange", () => { if (state.token) show(location.hash.slice(1)); });

async function refresh() {
  if (!state.token || !state.view) return;
  try { await VIEWS[state.view].update($("#main")); } catch (error) { if (error.status !== 401) console.error(error); }
}

function fillTable(selector, rows) {
  const body = $(`${selector} tbody`);
  if (body) body.innerHTML = rows.length ? rows.join("") : `<tr><td colspan="9" class="muted">none</td></tr>`;
}

// Every page of a list, for views that need the whole of one (sites for the topology).
async function allItems(path) {
  const items = [];
  let cursor = null;
  do {
    const page = await api("GET", `${path}${path.includes("?") ? "&" : "?"}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

// Replace a table body's rows with these, touching only rows whose content changed: a live
// update then patches what is on screen (no flicker, the pointer keeps its row).
function patchRows(body, items, key, row) {
  const existing = new Map(Array.from(body.rows).filter((r) => r.dataset.key !== undefined).map((r) => [r.dataset.key, r]));
  const wanted = [];
  for (const item of items) {
    const k = String(key(item)), html = row(item);
    let tr = existing.get(k);
    if (!tr || tr.dataset.html !== html) {
      const holder = document.createElement("tbody");
      holder.innerHTML = html;
      const fresh = holder.firstElementChild;
      fresh.dataset.key = k; fresh.dataset.html = html;
      tr = fresh;
    }
    wanted.push(tr);
  }
  if (!items.length) { body.innerHTML = `<tr><td colspan="9" class="muted">none</td></tr>`; return; }
  const keep = new Set(wanted);
  Array.from(body.rows).forEach((r) => { if (!keep.has(r)) r.remove(); });
  wanted.forEach((tr, i) => { if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null); });
}

// A table that shows one page of a server-side list: search and filters go to the server, prev /
// next follow cursors, and a live refresh re-reads only the page on screen.
function pagedTable(root, { testid, path, params = () => ({}), key, row, size = 50, onPage = () => {} }) {
  const table = $(`[data-testid="${testid}"]`, root);
  const pager = document.createElement("div");
  pager.className = "pager";
  pager.dataset.testid = `${testid}-pager`;
  pager.innerHTML = `<button class="small" data-prev disabled>‹ prev</button> <span data-count class="muted"></span>
    <button class="small" data-next disabled>next ›</button>`;
  table.after(pager);
  const at = { cursors: [null], index: 0, next: null, seq: 0 };
  async function load() {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params())) if (v !== "" && v !== null && v !== undefined) query.set(k, v);
    query.set("limit", size);
    if (at.cursors[at.index]) query.set("cursor", at.cursors[at.index]);
    const seq = ++at.seq;
    const page = await api("GET", `${path}?${query}`);
    if (seq !== at.seq) return;  // a newer request (a keystroke) superseded this one
    at.next = page.next_cursor;
    patchRows(table.tBodies[0], page.items, key, row);
    table.dataset.loads = String(Number(table.dataset.loads || 0) + 1);  // how many pages it has shown (tests wait on it)
    const first = at.index * size;
    $("[data-count]", pager).textContent = page.total
      ? `${(first + 1).toLocaleString()}–${(first + page.items.length).toLocaleString()} of ${page.total.toLocaleString()}` : "none";
    $("[data-prev]", pager).disabled = at.index === 0;
    $("[data-next]", pager).disabled = !at.next;
    onPage(page);
  }
  $("[data-prev]", pager).addEventListener("click", () => { at.index = Math.max(0, at.index - 1); load(); });
  $("[data-next]", pager).addEventListener("click", () => { if (at.next) { at.cursors[at.index + 1] = at.next; at.index += 1; load(); } });
  return { load, reset() { at.cursors = [null]; at.index = 0; at.next = null; return load(); } };
}

function searchBox(root, selector, table) {
  const input = $(selector, root);
  let timer = null;
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => table.reset(), 150); });
  return input;
}

function options(select, values, keep = true, blank = "") {
  if (!select) return;
  const current = select.value;
  select.innerHTML = values.map((v) => v === "" ? `<option value="">${esc(blank)}</option>` : `<option>${esc(v)}</option>`).join("");
  if (keep && values.includes(current)) select.value = current;
}

function healthCell(health) {
  const age = health.handshake_age_s !== null && health.handshake_age_s !== undefined ? ` (handshake ${Math.round(health.handshake_age_s)}s ago)` : "";
  return `<span class="state ${esc(health.state)}" title="${esc(health.reason)}">${esc(health.state)}</span>${esc(age)}`;
}

// topology ------------------------------------------------------------------------------------
// Sites are drawn in groups (by provider, by region, or one group), each group a box with its
// sites in a grid, so 200 sites stay readable and 1,000 stay usable: the wheel and the buttons
// zoom, dragging pans, and the search box marks matching sites and zooms to the first.
VIEWS.topology = {
  mount(root) {
    const svg = $("#topology", root);
    $("#topology-group", root).value = state.groupBy || "provider";
    $("#topology-group", root).addEventListener("change", (e) => { state.groupBy = e.target.value; state.zoom = null; refresh(); });
    $("#topology-search", root).addEventListener("input", () => { clearTimeout(state.findTimer); state.findTimer = setTimeout(() => findSites(root, true), 200); });
    $$("[data-zoom]", root).forEach((b) => b.addEventListener("click", () => zoomBy(svg, Number(b.dataset.zoom))));
    $("[data-fit]", root).addEventListener("click", () => { state.zoom = null; applyZoom(svg); });
    svg.addEventListener("wheel", (e) => { e.preventDefault(); zoomBy(svg, e.deltaY < 0 ? 0.8 : 1.25, pointIn(svg, e)); }, { passive: false });
    let drag = null;
    svg.addEventListener("pointerdown", (e) => { if (e.target === svg || e.target.classList.contains("group-box")) drag = { x: e.clientX, y: e.clientY, zoom: currentZoom(svg) }; });
    window.addEventListener("pointerup", () => { drag = null; });
    svg.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const scale = drag.zoom.w / svg.clientWidth;
      state.zoom = { ...drag.zoom, x: drag.zoom.x - (e.clientX - drag.x) * scale, y: drag.zoom.y - (e.clientY - drag.y) * scale };
      applyZoom(svg);
    });
  },
  async update(root) {
    const [status, sites] = await Promise.all([api("GET", "/api/v1/status"), allItems("/api/v1/sites")]);
    $("#revision").textContent = status.revision;
    state.data = { status, sites };
    drawTopology($("#topology", root), sites, status);
    findSites(root, false);
    drawEndpointChart($("#endpoint-chart", root), status.endpoints_by_site || {});
    renderDetails();
  },
};

function groupKey(site, by) {
  if (by === "region") return (site.aws && site.aws.region) || (site.openstack && (site.openstack.region || site.openstack.cloud)) || site.provider;
  if (by === "none") return "all sites";
  return site.provider;
}

function layout(sites, by) {
  const groups = new Map();
  for (const site of sites) { const k = groupKey(site, by); if (!groups.has(k)) groups.set(k, []); groups.get(k).push(site); }
  const rich = sites.length <= 30;  // few sites: bigger boxes that also name the gateway
  const cw = rich ? 200 : 118, ch = rich ? 74 : 36, head = 26, pad = 10;
  const boxes = [...groups.keys()].sort().map((name) => {
    const members = groups.get(name);
    const cols = Math.min(members.length, Math.max(1, Math.ceil(Math.sqrt(members.length * (rich ? 1.5 : 2.2)))));
    return { name, members, cols, w: cols * cw + 2 * pad, h: Math.ceil(members.length / cols) * ch + head + pad };
  });
  const area = boxes.reduce((sum, b) => sum + b.w * b.h, 0);
  const maxWidth = Math.max(800, Math.max(...boxes.map((b) => b.w), 0), Math.sqrt(area) * 1.5);
  const positions = {}, groupBoxes = [];
  let x = 0, y = 0, rowHeight = 0, width = 0;
  for (const box of boxes) {
    if (x > 0 && x + box.w > maxWidth) { x = 0; y += rowHeight + 16; rowHeight = 0; }
    groupBoxes.push({ ...box, x, y });
    box.members.forEach((site, i) => {
      positions[site.name] = { x: x + pad + (i % box.cols) * cw + cw / 2, y: y + head + Math.floor(i / box.cols) * ch + ch / 2 };
    });
    x += box.w + 16; rowHeight = Math.max(rowHeight, box.h); width = Math.max(width, x);
  }
  return { positions, groupBoxes, cw, ch, rich, width: Math.max(width, 400), height: Math.max(y + rowHeight, 200) };
}

function currentZoom(svg) { return state.zoom || state.fullView || { x: 0, y: 0, w: 800, h: 520 }; }
function applyZoom(svg) { const z = currentZoom(svg); svg.setAttribute("viewBox", `${z.x} ${z.y} ${z.w} ${z.h}`); }
function pointIn(svg, event) {
  const z = currentZoom(svg), r = svg.getBoundingClientRect();
  return { x: z.x + ((event.clientX - r.left) / r.width) * z.w, y: z.y + ((event.clientY - r.top) / r.height) * z.h };
}
function zoomBy(svg, factor, around) {
  const z = currentZoom(svg), c = around || { x: z.x + z.w / 2, y: z.y + z.h / 2 };
  const w = Math.min(Math.max(z.w * factor, 150), (state.fullView || z).w * 2), h = w * (z.h / z.w);
  state.zoom = { x: c.x - ((c.x - z.x) / z.w) * w, y: c.y - ((c.y - z.y) / z.h) * h, w, h };
  applyZoom(svg);
}

function findSites(root, zoomTo) {
  const text = $("#topology-search", root).value.trim().toLowerCase();
  const svg = $("#topology", root);
  let first = null, count = 0;
  $$("[data-site]", svg).forEach((g) => {
    const hit = text !== "" && g.dataset.site.toLowerCase().includes(text);
    g.classList.toggle("match", hit);
    if (hit) { count += 1; first = first || g; }
  });
  $("#topology-found", root).textContent = text ? `${count} site(s)` : "";
  if (zoomTo && first && state.layout) {
    const p = state.layout.positions[first.dataset.site], full = state.fullView;
    const w = Math.min(full.w, 700), h = w * (full.h / full.w);
    state.zoom = { x: p.x - w / 2, y: p.y - h / 2, w, h };
    applyZoom(svg);
    select("site", first.dataset.site);
  }
}

function unchanged(element, data) {
  // Redraw only when what is drawn changed: a redraw detaches the elements under the pointer.
  const key = JSON.stringify(data);
  if (element.dataset.drawn === key) return true;
  element.dataset.drawn = key;
  return false;
}

function drawTopology(svg, sites, status) {
  const by = state.groupBy || "provider";
  const drawn = { by, selected: state.selected, sites: sites.map((s) => [s.name, s.provider, s.aws, s.openstack]),
    gateways: status.gateways.map((g) => [g.name, g.site, g.online]),
    connections: status.connections.map((c) => [c.name, c.site_a, c.site_b, c.enabled, c.health.state]) };
  if (unchanged(svg, drawn)) return;
  const plan = layout(sites, by);
  state.layout = plan;
  const fullHeight = Math.max(plan.height + 20, (plan.width + 20) * 0.45);
  state.fullView = { x: -10, y: -(fullHeight - plan.height) / 2 - 10 * (fullHeight === plan.height + 20 ? 1 : 0), w: plan.width + 20, h: fullHeight };
  const at = plan.positions;
  const online = {};
  for (const g of status.gateways) (online[g.site] = online[g.site] || []).push(g);
  const many = status.connections.length > 40;
  const chosenSite = state.selected && state.selected.kind === "site" ? state.selected.name : null;
  const groups = plan.groupBoxes.map((b) => `<g class="group"><rect class="group-box" x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="10"></rect>
    <text class="group-name${plan.rich ? " small" : ""}" x="${b.x + 10}" y="${b.y + 18}">${esc(b.name)} · ${b.members.length} site(s)</text></g>`);
  // Few connections: each is drawn, arcing over the boxes between its ends (a straight line would
  // run under them), its label at the top of the arc. Many: one band per pair of groups, as wide
  // as its count and coloured by its worst member, plus the connections of the chosen site.
  const arc = (a, b) => {
    const dx = b.x - a.x, dy = b.y - a.y, length = Math.hypot(dx, dy) || 1, bend = Math.max(0.35 * length, 60);
    const sign = dx >= 0 ? -1 : 1;  // always bend upwards on screen
    const cx = (a.x + b.x) / 2 + sign * (dy / length) * -bend, cy = (a.y + b.y) / 2 + sign * (dx / length) * bend;
    return { d: `M${a.x},${a.y} Q${cx.toFixed(1)},${cy.toFixed(1)} ${b.x},${b.y}`,
      top: { x: 0.25 * a.x + 0.5 * cx + 0.25 * b.x, y: 0.25 * a.y + 0.5 * cy + 0.25 * b.y } };
  };
  const edgeOf = (c, label) => {
    const a = at[c.site_a], b = at[c.site_b];
    if (!a || !b) return "";
    const health = c.enabled ? c.health.state : "disabled";
    const selected = stateSelected("connection", c.name) || (chosenSite && (c.site_a === chosenSite || c.site_b === chosenSite)) ? " selected" : "";
    const shape = arc(a, b);
    const text = label ? `<text class="edge-label" x="${shape.top.x.toFixed(1)}" y="${(shape.top.y - 6).toFixed(1)}" text-anchor="middle">${esc(c.name)} · ${esc(health)}</text>` : "";
    return `<g data-connection="${esc(c.name)}" data-testid="edge-${esc(c.name)}" data-state="${esc(health)}">
      <path class="edge ${esc(health)}${selected}" d="${shape.d}"><title>${esc(c.name)}: ${esc(health)}</title></path>${text}</g>`;
  };
  let edges;
  if (!many) {
    edges = status.connections.map((c) => edgeOf(c, true));
  } else {
    const groupOf = {}, centre = {};
    for (const b of plan.groupBoxes) { centre[b.name] = { x: b.x + b.w / 2, y: b.y + b.h / 2 }; for (const m of b.members) groupOf[m.name] = b.name; }
    const rank = { down: 4, degraded: 3, pending: 2, disabled: 1, up: 0 };
    const bands = new Map();
    for (const c of status.connections) {
      const [g1, g2] = [groupOf[c.site_a], groupOf[c.site_b]].sort();
      if (!g1 || !g2) continue;
      const health = c.enabled ? c.health.state : "disabled";
      const band = bands.get(`${g1}\n${g2}`) || { g1, g2, n: 0, worst: "up", states: {} };
      band.n += 1; band.states[health] = (band.states[health] || 0) + 1;
      if (rank[health] > rank[band.worst]) band.worst = health;
      bands.set(`${g1}\n${g2}`, band);
    }
    edges = [...bands.values()].map((band) => {
      const summary = Object.entries(band.states).map(([k, n]) => `${n} ${k}`).join(", ");
      if (band.g1 === band.g2) {
        const c = centre[band.g1];
        return `<text class="band-label" x="${c.x}" y="${plan.groupBoxes.find((b) => b.name === band.g1).y + 18}" text-anchor="end" dx="${plan.groupBoxes.find((b) => b.name === band.g1).w / 2 - 10}">${band.n} inside: ${esc(summary)}</text>`;
      }
      const shape = arc(centre[band.g1], centre[band.g2]);
      return `<g class="band" data-band="${esc(band.g1)}|${esc(band.g2)}"><path class="edge band-path ${esc(band.worst)}" style="stroke-width:${Math.min(30, 3 + Math.sqrt(band.n) * 2).toFixed(1)}" d="${shape.d}">
        <title>${band.n} connection(s) ${esc(band.g1)} ↔ ${esc(band.g2)}: ${esc(summary)}</title></path>
        <text class="band-label" x="${shape.top.x.toFixed(1)}" y="${(shape.top.y - 8).toFixed(1)}" text-anchor="middle">${band.n} connection(s): ${esc(summary)}</text></g>`;
    });
    if (chosenSite) edges.push(...status.connections.filter((c) => c.site_a === chosenSite || c.site_b === chosenSite).slice(0, 200).map((c) => edgeOf(c, false)));
  }
  const w = plan.cw - 10, h = plan.ch - 8;
  const nodes = sites.map((site) => {
    const p = at[site.name];
    const gws = online[site.name] || [];
    const up = gws.some((g) => g.online);
    const selected = stateSelected("site", site.name) ? " selected" : "";
    const gwText = gws.length ? `${gws[0].name}${up ? "" : " (offline)"}` : "no gateway";
    const extra = plan.rich ? `<text x="${p.x}" y="${p.y + 4}" text-anchor="middle" class="muted">${esc(site.provider)}</text>
      <text x="${p.x - w / 2 + 22}" y="${p.y + h / 2 - 8}">${esc(gwText)}</text>` : "";
    return `<g class="site${selected}" data-site="${esc(site.name)}" data-testid="site-${esc(site.name)}">
      <rect x="${p.x - w / 2}" y="${p.y - h / 2}" width="${w}" height="${h}" rx="${plan.rich ? 10 : 6}"></rect>
      <text class="name" x="${p.x}" y="${plan.rich ? p.y - 12 : p.y + 4}" text-anchor="middle">${esc(site.name)}</text>${extra}
      <circle class="gateway ${up ? "" : "offline"}" cx="${p.x - w / 2 + 10}" cy="${plan.rich ? p.y + h / 2 - 12 : p.y}" r="${plan.rich ? 6 : 4}"><title>${esc(gwText)}</title></circle></g>`;
  });
  svg.innerHTML = groups.join("") + edges.join("") + nodes.join("");
  applyZoom(svg);
  $$("[data-connection]", svg).forEach((el) => el.addEventListener("click", () => select("connection", el.dataset.connection)));
  $$("[data-site]", svg).forEach((el) => el.addEventListener("click", () => select("site", el.dataset.site)));
}

function stateSelected(kind, name) { return state.selected && state.selected.kind === kind && state.selected.name === name; }
function select(kind, name) { state.selected = { kind, name }; refresh(); }

function renderDetails() {
  const box = $("#details");
  if (!box || !state.selected) return;
  const { status } = state.data;
  if (state.selected.kind === "connection") {
    const c = status.connections.find((x) => x.name === state.selected.name);
    if (!c) { box.innerHTML = `<p class="muted">gone</p>`; return; }
    box.innerHTML = `<dl><dt>connection</dt><dd>${esc(c.name)}</dd><dt>network</dt><dd>${esc(c.network)}</dd>
      <dt>sites</dt><dd>${esc(c.site_a)} ↔ ${esc(c.site_b)}</dd><dt>health</dt><dd>${healthCell(c.health)}</dd>
      <dt>reason</dt><dd>${esc(c.health.reason || "-")}</dd><dt>rx / tx</dt><dd>${bytes(c.health.rx_bytes)} / ${bytes(c.health.tx_bytes)}</dd>
      <dt>MTU</dt><dd>${c.mtu}</dd><dt>enabled</dt><dd>${c.enabled ? "yes" : "no"}</dd></dl>`;
  } else {
    const site = state.data.sites.find((x) => x.name === state.selected.name);
    if (!site) { box.innerHTML = `<p class="muted">gone</p>`; return; }
    const gw = status.gateways.find((g) => g.site === site.name);
    const count = (status.endpoints_by_site || {})[site.name] || 0;
    box.innerHTML = `<dl><dt>site</dt><dd>${esc(site.name)}</dd><dt>provider</dt><dd>${esc(site.provider)}</dd>
      <dt>gateway</dt><dd>${gw ? esc(gw.name) : "-"}</dd><dt>online</dt><dd>${gw && gw.online ? "yes" : "no"}</dd>
      <dt>public address</dt><dd>${esc(gw && gw.endpoint || "-")}</dd><dt>endpoints</dt><dd>${count}</dd>
      <dt>connections</dt><dd>${esc(site.connections.length > 12 ? `${site.connections.length} connections` : site.connections.join(", ") || "-")}</dd></dl>`;
  }
}

function drawEndpointChart(svg, bySite) {
  // the 5 sites with the most endpoints, the rest summed: readable at any number of sites
  const ranked = Object.entries(bySite).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const counts = ranked.slice(0, 5).map(([name, n]) => ({ name, n }));
  if (ranked.length > 5) counts.push({ name: `${ranked.length - 5} others`, n: ranked.slice(5).reduce((sum, [, n]) => sum + n, 0) });
  if (unchanged(svg, counts)) return;
  const max = Math.max(1, ...counts.map((c) => c.n));
  const width = 320 / Math.max(1, counts.length);
  svg.innerHTML = counts.map((c, i) => {
    const h = (c.n / max) * 110;
    return `<rect class="bar" x="${i * width + 4}" y="${130 - h}" width="${Math.max(2, width - 8)}" height="${h}"><title>${esc(c.name)}: ${c.n}</title></rect>
      <text class="chart-text" x="${i * width + width / 2}" y="${124 - h}" text-anchor="middle">${c.n}</text>
      <text class="chart-text" x="${i * width + width / 2}" y="148" text-anchor="middle">${esc(c.name.length > 9 ? c.name.slice(0, 8) + "…" : c.name)}</text>`;
  }).join("");
}

// tables ----------------------------------------------------------------------------------------
function cloudCell(site, cloud) {
  if (!site.aws && !site.openstack) return "-";  // cloudgw does not drive this site's cloud
  if (!cloud) return "pending";
  const detail = cloud.detail || {};
  const counts = detail.secondary_ips !== undefined ? `${detail.secondary_ips} secondary IPs`
    : detail.allowed_address_pairs !== undefined ? `${detail.allowed_address_pairs} address pairs` : "";
  const error = cloud.error ? `<br><span class="warn">${esc(cloud.error)}</span>` : "";
  return `<span class="state-${esc(cloud.state)}">${esc(cloud.state)}</span>${counts ? ", " + esc(counts) : ""}${error}`;
}

VIEWS.sites = {
  mount(root) {
    state.table = pagedTable(root, { testid: "sites-table", path: "/api/v1/sites", key: (s) => s.name,
      params: () => ({ q: $("#sites-search", root).value.trim() }),
      row: (s) => `<tr><td>${esc(s.name)}</td><td>${esc(s.provider)}</td>
        <td data-testid="cloud-${esc(s.name)}">${cloudCell(s, (state.cloudOf || {})[s.name])}</td><td>${esc(listed(s.gateways))}</td>
        <td>${esc(listed(s.connections))}</td><td>${esc(s.description)}</td></tr>` });
    searchBox(root, "#sites-search", state.table);
  },
  async update() {
    const clouds = await api("GET", "/api/v1/providers?limit=1000");
    state.cloudOf = Object.fromEntries(clouds.map((c) => [c.site, c]));
    await state.table.load();
  },
};

function listed(names) { return names.length > 8 ? `${names.slice(0, 8).join(", ")} and ${names.length - 8} more` : names.join(", "); }

function roleCell(g) {
  // an HA pair member: its role, why it has it and since when (the agent's own view when newer)
  if (!g.role && !(g.ha && g.ha.role)) return "-";
  const role = g.role || g.ha.role;
  const reason = g.role_reason || (g.ha && g.ha.reason) || "";
  const since = g.role_since ? ` · ${ago(g.role_since)}` : "";
  return `<span class="role-${esc(role)}" data-testid="role-${esc(g.name)}">${esc(role)}</span> (p${g.priority})${since}` +
    (reason ? `<br><small>${esc(reason)}</small>` : "");
}

function gatewayRow(g) {
  return `<tr><td>${esc(g.name)}</td><td>${esc(g.site)}</td><td>${roleCell(g)}</td>
    <td>${esc(g.version || "-")}</td><td>${g.online ? "yes" : "no"}</td><td>${ago(g.last_seen)}</td><td>${esc(g.endpoint || "-")}</td>
    <td>${g.applied_revision ?? "-"}/${g.doc_revision}</td>
    <td>${g.tunnels.slice(0, 20).map((t) => `${esc(t.peer)}: ${t.handshake_age_s === null ? "no handshake" : Math.round(t.handshake_age_s) + "s"}, ${bytes(t.rx_bytes)} / ${bytes(t.tx_bytes)}${mtuNote(t)}`).join("<br>") || "-"}${g.tunnels.length > 20 ? `<br>and ${g.tunnels.length - 20} more` : ""}</td>
    <td>${g.nat_sessions ?? "-"}</td></tr>`;
}

VIEWS.gateways = {
  mount(root) {
    state.table = pagedTable(root, { testid: "gateways-table", path: "/api/v1/gateways", key: (g) => g.name, row: gatewayRow,
      params: () => ({ q: $("#gateways-search", root).value.trim(), state: $("#gateways-state", root).value }) });
    searchBox(root, "#gateways-search", state.table);
    $("#gateways-state", root).addEventListener("change", () => state.table.reset());
  },
  async update() { await state.table.load(); },
};

VIEWS.connections = {
  async mount(root) {
    state.table = pagedTable(root, { testid: "connections-table", path: "/api/v1/connections", key: (c) => c.name,
      params: () => ({ q: $("#connections-search", root).value.trim(), state: $("#connections-state", root).value }),
      row: (c) => `<tr data-row="${esc(c.name)}">
        <td><a href="#" data-chart="${esc(c.name)}">${esc(c.name)}</a></td><td>${esc(c.network)}</td><td>${esc(c.site_a)} ↔ ${esc(c.site_b)}</td>
        <td>${healthCell(c.health)}</td><td>${c.mtu}</td><td>${c.keepalive}</td><td>${bytes(c.health.rx_bytes)} / ${bytes(c.health.tx_bytes)}</td>
        <td class="admin-only"><button class="small" data-toggle="${esc(c.name)}" data-enabled="${c.enabled}">${c.enabled ? "disable" : "enable"}</button>
          <button class="small danger" data-delete="connections/${esc(c.name)}">delete</button></td></tr>`,
      onPage: (page) => { state.firstConnection = page.items[0] && page.items[0].name; } });
    searchBox(root, "#connections-search", state.table);
    $("#connections-state", root).addEventListener("change", () => state.table.reset());
    root.addEventListener("click", (event) => {
      const toggle = event.target.closest("[data-toggle]"), chart = event.target.closest("[data-chart]");
      if (toggle) act(() => api("PATCH", `/api/v1/connections/${encodeURIComponent(toggle.dataset.toggle)}`, { enabled: toggle.dataset.enabled !== "true" }));
      if (chart) { event.preventDefault(); state.chart = chart.dataset.chart; refresh(); }
    });
    const [networks, sites] = await Promise.all([api("GET", "/api/v1/networks?limit=1000"), api("GET", "/api/v1/sites?limit=1000")]);
    options($('[name="network"]', root), networks.items.map((n) => n.name));
    const names = sites.items.map((s) => s.name);
    options($('[name="site_a"]', root), names); options($('[name="site_b"]', root), names);
    if (names.length > 1) $('[name="site_b"]', root).value = names[1];
  },
  async update(root) {
    await state.table.load();
    const chosen = state.chart || state.firstConnection;
    if (chosen) {
      const series = await api("GET", `/api/v1/connections/${encodeURIComponent(chosen)}/throughput`);
      $("#throughput-title").textContent = `Throughput of ${chosen} (last hour, seen by ${series.from || "-"})`;
      drawThroughput($("#throughput", root), series.points);
    }
  },
};

function drawThroughput(svg, points) {
  if (!points.length) { svg.innerHTML = `<text class="chart-text" x="20" y="90">no heartbeats with traffic yet</text>`; return; }
  const t0 = points[0].t, t1 = points[points.length - 1].t;
  const max = Math.max(1, ...points.map((p) => Math.max(p.rx_bps, p.tx_bps)));
  const x = (t) => 50 + ((t - t0) / Math.max(1, t1 - t0)) * 630, y = (v) => 160 - (v / max) * 140;
  const path = (key) => points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" ");
  svg.innerHTML = `<line class="axis" x1="50" y1="160" x2="680" y2="160"></line><line class="axis" x1="50" y1="20" x2="50" y2="160"></line>
    <text class="chart-text" x="4" y="24">${rate(max)}</text><text class="chart-text" x="30" y="174">-${Math.round((t1 - t0) / 60)} min</text>
    <text class="chart-text" x="650" y="174">now</text><path class="rx" d="${path("rx_bps")}"></path><path class="tx" d="${path("tx_bps")}"></path>
    <text class="chart-text" x="560" y="16" fill="#2563eb">— rx</text><text class="chart-text" x="610" y="16">— tx</text>`;
}

VIEWS.mapping = {
  async mount(root) {
    state.table = pagedTable(root, { testid: "endpoints-table", path: "/api/v1/endpoints", key: (e) => `${e.network}/${e.ip}/${e.gateway}`,
      params: () => ({ q: $("#search", root).value.trim(), network: $("#endpoints-network", root).value,
        site: $("#endpoints-site", root).value, state: $("#endpoints-state", root).value }),
      row: (e) => `<tr><td>${esc(e.network)}</td><td>${esc(e.ip)}</td>
        <td>${esc(e.mac || "-")}</td><td>${esc(e.gateway)}</td><td>${esc(e.site)}</td><td>${e.effective ? "yes" : "no"}</td>
        <td>${ago(e.first_seen * 1000)}</td></tr>`,
      onPage: (page) => {
        const shown = page.conflicts.slice(0, 20);
        $("#conflicts", root).innerHTML = shown.map((c) => `<p class="state down">conflict: ${esc(c.ip)} in ${esc(c.network)} announced by ${esc(c.gateways.join(", "))}</p>`).join("")
          + (page.conflicts.length > 20 ? `<p class="muted">and ${page.conflicts.length - 20} more conflicts</p>` : "");
      } });
    state.pools = pagedTable(root, { testid: "pools-table", path: "/api/v1/pools", key: (p) => p.name, size: 25,
      params: () => ({ network: $("#endpoints-network", root).value, site: $("#endpoints-site", root).value }),
      row: (p) => `<tr><td>${esc(p.name)}</td><td>${esc(p.site)}</td>
        <td>${esc(p.range)} (${p.size})</td><td class="admin-only"><button class="small danger" data-delete="pools/${esc(p.name)}">delete</button></td></tr>` });
    searchBox(root, "#search", state.table);
    for (const id of ["#endpoints-network", "#endpoints-site", "#endpoints-state"]) {
      $(id, root).addEventListener("change", () => { state.table.reset(); state.pools.reset(); });
    }
    const [networks, sites] = await Promise.all([api("GET", "/api/v1/networks?limit=1000"), api("GET", "/api/v1/sites?limit=1000")]);
    options($('#pool-form [name="network"]', root), networks.items.map((n) => n.name));
    options($('#pool-form [name="site"]', root), sites.items.map((s) => s.name));
    options($("#endpoints-network", root), ["", ...networks.items.map((n) => n.name)], true, "any network");
    options($("#endpoints-site", root), ["", ...sites.items.map((s) => s.name)], true, "any site");
  },
  async update() { await Promise.all([state.table.load(), state.pools.load()]); },
};

VIEWS.nat = {
  async mount(root) {
    $("#nat-site", root).addEventListener("change", () => refresh());
    const [gateways, sites] = await Promise.all([api("GET", "/api/v1/gateways?limit=1000"), api("GET", "/api/v1/sites?limit=1000")]);
    options($('#forward-form [name="gateway"]', root), gateways.items.map((g) => g.name));
    options($("#nat-site", root), ["", ...sites.items.map((s) => s.name)], true, "the first ten");
  },
  async update(root) {
    // sessions of the chosen site, or of the first 10 sites: never one request per site of a thousand
    const chosen = $("#nat-site", root).value;
    const [forwards, egress, sites] = await Promise.all([api("GET", "/api/v1/forwards?limit=1000"), api("GET", "/api/v1/egress?limit=1000"),
      chosen ? { items: [{ name: chosen }] } : api("GET", "/api/v1/sites?limit=10")]);
    fillTable('[data-testid="forwards-table"]', forwards.items.map((f) => `<tr><td>${esc(f.name)}</td><td>${esc(f.gateway)}</td>
      <td>${esc(f.protocol)}/${esc(f.public_address || f.public_port)}</td><td>${esc(f.target_ip)}:${f.target_port}</td>
      <td class="admin-only"><button class="small danger" data-delete="forwards/${esc(f.name)}">delete</button></td></tr>`));
    fillTable('[data-testid="egress-table"]', egress.items.map((e) => `<tr><td>${esc(e.site)}</td><td>${esc(e.network)}</td>
      <td>${esc(e.mode)}</td><td>${esc(e.via || "-")}</td></tr>`));
    const blocks = await Promise.all(sites.items.map((s) => api("GET", `/api/v1/nat/sessions?site=${encodeURIComponent(s.name)}`)));
    $("#sessions", root).innerHTML = blocks.flatMap((b) => b.gateways.map((g) => `<h4>${esc(g.gateway)}: ${g.count || 0} session(s)</h4>
      <table><thead><tr><th>Kind</th><th>Proto</th><th>State</th><th>From</th><th>To</th><th>Seen as</th></tr></thead><tbody>
      ${(g.sessions || []).map((s) => `<tr><td>${esc(s.kind)}</td><td>${esc(s.protocol)}</td><td>${esc(s.state)}</td><td>${esc(s.source)}</td>
        <td>${esc(s.destination)}</td><td>${esc(s.translated)}</td></tr>`).join("")}</tbody></table>`)).join("");
  },
};

VIEWS.explain = {
  mount(root) {
    const form = $("#explain-form", root);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const body = { src: form.src.value.trim(), dst: form.dst.value.trim() };
      if (form.network.value.trim()) body.network = form.network.value.trim();
      try {
        const result = await api("POST", "/api/v1/explain", body);
        const verdict = $('[data-testid="explain-verdict"]', root);
        verdict.className = `verdict state-${result.verdict}`;
        verdict.textContent = `${result.src} → ${result.dst} (${result.network || "no network"}): ${result.verdict}, ${result.took_ms} ms`;
        fillTable('[data-testid="explain-table"]', result.hops.map((h) => `<tr class="hop-${esc(h.state)}"><td>${esc(h.hop)}</td>
          <td class="state-${esc(h.state)}">${esc(h.state)}</td><td>${esc(h.detail)}</td><td>${esc(h.fix)}</td></tr>`));
      } catch (error) {
        if (error.status !== 401) showErrors(form, error);
      }
    });
  },
  async update() {},  // a path is checked when asked, not on every live update
};

VIEWS.burst = {
  async mount(root) {
    $("#burst-policy", root).addEventListener("change", () => refresh());
    const chosen = () => encodeURIComponent($("#burst-policy", root).value);
    $("#burst-toggle", root).addEventListener("click", (e) => act(() =>
      api("PATCH", `/api/v1/bursts/${chosen()}`, { enabled: e.target.dataset.enabled !== "true" })));
    $("#burst-delete", root).addEventListener("click", async () => {
      if (!confirm(`Delete burst policy ${$("#burst-policy", root).value}? Its VMs are terminated.`)) return;
      await act(() => api("DELETE", `/api/v1/bursts/${chosen()}`));
      show("burst");
    });
    const policies = await allItems("/api/v1/bursts");
    options($("#burst-policy", root), policies.map((p) => p.name));
    refresh();
  },
  async update(root) {
    const name = $("#burst-policy", root).value;
    if (!name) { $("#burst-reason", root).textContent = "no burst policy yet (cloudgw burst policy add, docs/burst.md)"; return; }
    const [status, history] = await Promise.all([api("GET", `/api/v1/bursts/${encodeURIComponent(name)}/status`),
      api("GET", `/api/v1/bursts/${encodeURIComponent(name)}/history?limit=50`)]);
    const toggle = $("#burst-toggle", root);
    toggle.dataset.enabled = String(status.enabled);
    toggle.textContent = status.enabled ? "disable" : "enable";
    const demand = status.demand === null || status.demand === undefined ? "-" : status.demand.toFixed(2);
    $("#burst-reason", root).textContent = `demand ${demand}: ${status.reason}${status.error ? ` (signal: ${status.error})` : ""}`;
    drawBurst($("#burst-chart", root), status.series || []);
    fillTable('[data-testid="burst-decisions"]', history.items.map((d) => `<tr class="decision-${esc(d.action)}"><td>${ago(d.at * 1000)}</td>
      <td>${d.demand === null ? "-" : d.demand.toFixed(2)}</td><td>${d.vms}</td><td>${d.change ? (d.change > 0 ? "+" : "") + d.change : ""}</td><td>${esc(d.reason)}</td></tr>`));
    fillTable('[data-testid="burst-vms"]', status.vms.map((v) => `<tr><td>${esc(v.ip)}</td><td>${esc(v.instance || "-")}</td>
      <td class="vm-${esc(v.state)}">${esc(v.state)}</td><td>${ago(v.launched_at * 1000)}</td></tr>`));
  },
};

// demand (line, left scale) and VM count (steps, right scale) in one chart
function drawBurst(svg, points) {
  if (!points.length) { svg.innerHTML = `<text class="chart-text" x="20" y="90">no reading yet</text>`; return; }
  const t0 = points[0].t, t1 = points[points.length - 1].t;
  const maxDemand = Math.max(1, ...points.map((p) => p.demand ?? 0)), maxVms = Math.max(1, ...points.map((p) => p.vms));
  const x = (t) => 50 + ((t - t0) / Math.max(1, t1 - t0)) * 600;
  const yd = (v) => 160 - (v / maxDemand) * 140, yv = (n) => 160 - (n / maxVms) * 140;
  const demand = points.filter((p) => p.demand !== null).map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${yd(p.demand).toFixed(1)}`).join(" ");
  const vms = points.map((p, i) => `${i ? `H${x(p.t).toFixed(1)} V` : `M${x(p.t).toFixed(1)},`}${yv(p.vms).toFixed(1)}`).join(" ");
  svg.innerHTML = `<line class="axis" x1="50" y1="160" x2="650" y2="160"></line><line class="axis" x1="50" y1="20" x2="50" y2="160"></line>
    <text class="chart-text" x="4" y="24">${maxDemand.toFixed(2)}</text><text class="chart-text" x="656" y="24">${maxVms} VMs</text>
    <text class="chart-text" x="30" y="174">-${Math.round((t1 - t0) / 60)} min</text><text class="chart-text" x="630" y="174">now</text>
    <path class="rx" d="${demand}" data-testid="burst-demand-line"></path><path class="tx" d="${vms}" data-testid="burst-vms-line"></path>
    <text class="chart-text" x="460" y="16" fill="#2563eb">— demand</text><text class="chart-text" x="560" y="16">— VMs</text>`;
}

VIEWS.audit = {
  mount(root) {
    state.table = pagedTable(root, { testid: "audit-table", path: "/api/v1/audit", key: (a) => a.id, size: 100,
      params: () => ({ kind: $("#audit-kind", root).value }),
      row: (a) => `<tr><td>${a.revision}</td><td>${ago(a.at)}</td><td>${esc(a.actor)}</td>
        <td>${esc(a.action)} ${esc(a.kind)} ${esc(a.name)}${a.action === "role" && a.after
          ? `: ${esc(a.after.role)} (epoch ${a.after.epoch}) — ${esc(a.after.reason || "")}` : ""}</td></tr>` });
    $("#audit-kind", root).addEventListener("change", () => state.table.reset());
  },
  async update() { await state.table.load(); },
};

// forms and actions -----------------------------------------------------------------------------
function formBody(form) {
  const body = {};
  for (const element of form.elements) {
    if (!element.name) continue;
    if (element.type === "checkbox") body[element.name] = element.checked;
    else if (element.value === "") continue;
    else body[element.name] = element.type === "number" ? Number(element.value) : element.value;
  }
  return body;
}

function clearErrors(form) {
  $$(".field-error", form).forEach((e) => { e.textContent = ""; });
  $$(".invalid", form).forEach((e) => e.classList.remove("invalid"));
}

function showErrors(form, error) {
  const problems = error.body.problems || [{ field: "", message: error.message }];
  for (const problem of problems) {
    const field = String(problem.field || "").split(/[.[]/)[0];
    const slot = $(`.field-error[data-for="${field}"]`, form) || $('.field-error[data-for=""]', form);
    const input = $(`[name="${field}"]`, form);
    if (input) input.classList.add("invalid");
    slot.textContent = (slot.textContent ? slot.textContent + " " : "") + problem.message + (problem.fix ? ` (${problem.fix})` : "");
  }
}

function bindForm(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      await api("POST", `/api/v1/${form.dataset.kind}`, formBody(form));
      form.reset();
      refresh();
    } catch (error) { if (error.status !== 401) showErrors(form, error); }
  });
}

// One delegated handler for every delete button, bound once per view: rows that a live update
// keeps must not gain a second listener.
function bindRowActions(root) {
  root.addEventListener("click", (event) => {
    const button = event.target.closest("[data-delete]");
    if (!button) return;
    const [kind, name] = button.dataset.delete.split("/");
    if (confirm(`Delete ${kind.replace(/s$/, "")} ${name}?`)) act(() => api("DELETE", `/api/v1/${kind}/${encodeURIComponent(name)}`));
  });
}

async function act(call) {
  try { await call(); } catch (error) { alert(error.message); }
  refresh();
}

// start -------------------------------------------------------------------------------------------
if (state.token) signIn(state.token).catch(() => signOut(""));
else $("#login").hidden = false;
