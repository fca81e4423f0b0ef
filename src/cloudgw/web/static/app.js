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
  if (VIEWS[name].mount) VIEWS[name].mount(main);
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

function options(select, values, keep = true) {
  if (!select) return;
  const current = select.value;
  select.innerHTML = values.map((v) => `<option>${esc(v)}</option>`).join("");
  if (keep && values.includes(current)) select.value = current;
}

function healthCell(health) {
  const age = health.handshake_age_s !== null && health.handshake_age_s !== undefined ? ` (handshake ${Math.round(health.handshake_age_s)}s ago)` : "";
  return `<span class="state ${esc(health.state)}" title="${esc(health.reason)}">${esc(health.state)}</span>${esc(age)}`;
}

// topology ------------------------------------------------------------------------------------
VIEWS.topology = {
  async update(root) {
    const [status, sites, endpoints] = await Promise.all([api("GET", "/api/v1/status"), api("GET", "/api/v1/sites"),
      api("GET", "/api/v1/endpoints")]);
    $("#revision").textContent = status.revision;
    state.data = { status, sites: sites.items, endpoints: endpoints.items };
    drawTopology($("#topology", root), sites.items, status);
    drawEndpointChart($("#endpoint-chart", root), sites.items, endpoints.items);
    renderDetails();
  },
};

function layout(sites) {
  const positions = {};
  const n = sites.length;
  sites.forEach((site, i) => {
    const angle = n === 1 ? 0 : (2 * Math.PI * i) / n - Math.PI / 2;
    positions[site.name] = { x: 400 + (n === 1 ? 0 : 270 * Math.cos(angle)), y: 260 + (n === 1 ? 0 : 190 * Math.sin(angle)) };
  });
  return positions;
}

function unchanged(element, data) {
  // Redraw only when what is drawn changed: a redraw detaches the elements under the pointer.
  const key = JSON.stringify(data);
  if (element.dataset.drawn === key) return true;
  element.dataset.drawn = key;
  return false;
}

function drawTopology(svg, sites, status) {
  const drawn = { sites, selected: state.selected, gateways: status.gateways.map((g) => [g.name, g.site, g.online]),
    connections: status.connections.map((c) => [c.name, c.site_a, c.site_b, c.enabled, c.health.state]) };
  if (unchanged(svg, drawn)) return;
  const at = layout(sites);
  const gateways = Object.fromEntries(status.gateways.map((g) => [g.name, g]));
  const edges = status.connections.map((c) => {
    const a = at[c.site_a], b = at[c.site_b];
    if (!a || !b) return "";
    const health = c.enabled ? c.health.state : "disabled";
    const selected = stateSelected("connection", c.name) ? " selected" : "";
    return `<g data-connection="${esc(c.name)}" data-testid="edge-${esc(c.name)}" data-state="${esc(health)}">
      <line class="edge ${esc(health)}${selected}" x1="${a.x}" y1="${a.y}" x2="${b.x}" y2="${b.y}"><title>${esc(c.name)}: ${esc(health)}</title></line>
      <text class="edge-label" x="${(a.x + b.x) / 2 + 6}" y="${(a.y + b.y) / 2 - 6}">${esc(c.name)} · ${esc(health)}</text></g>`;
  });
  const nodes = sites.map((site) => {
    const p = at[site.name];
    const gw = site.gateways.map((name) => gateways[name]).filter(Boolean)[0];
    const gwText = gw ? `${gw.name}${gw.online ? "" : " (offline)"}` : "no gateway";
    const selected = stateSelected("site", site.name) ? " selected" : "";
    return `<g class="site${selected}" data-site="${esc(site.name)}" data-testid="site-${esc(site.name)}">
      <rect x="${p.x - 90}" y="${p.y - 42}" width="180" height="84" rx="12"></rect>
      <text class="name" x="${p.x}" y="${p.y - 16}" text-anchor="middle">${esc(site.name)}</text>
      <text x="${p.x}" y="${p.y + 2}" text-anchor="middle" class="muted">${esc(site.provider)}</text>
      <circle class="gateway ${gw && gw.online ? "" : "offline"}" cx="${p.x - 70}" cy="${p.y + 22}" r="6"></circle>
      <text x="${p.x - 58}" y="${p.y + 26}">${esc(gwText)}</text></g>`;
  });
  svg.innerHTML = edges.join("") + nodes.join("");
  $$("[data-connection]", svg).forEach((el) => el.addEventListener("click", () => select("connection", el.dataset.connection)));
  $$("[data-site]", svg).forEach((el) => el.addEventListener("click", () => select("site", el.dataset.site)));
}

function stateSelected(kind, name) { return state.selected && state.selected.kind === kind && state.selected.name === name; }
function select(kind, name) { state.selected = { kind, name }; refresh(); }

function renderDetails() {
  const box = $("#details");
  if (!box || !state.selected) return;
  const { status, endpoints } = state.data;
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
    const count = endpoints.filter((e) => e.site === site.name && e.effective).length;
    box.innerHTML = `<dl><dt>site</dt><dd>${esc(site.name)}</dd><dt>provider</dt><dd>${esc(site.provider)}</dd>
      <dt>gateway</dt><dd>${gw ? esc(gw.name) : "-"}</dd><dt>online</dt><dd>${gw && gw.online ? "yes" : "no"}</dd>
      <dt>public address</dt><dd>${esc(gw && gw.endpoint || "-")}</dd><dt>endpoints</dt><dd>${count}</dd>
      <dt>connections</dt><dd>${esc(site.connections.join(", ") || "-")}</dd></dl>`;
  }
}

function drawEndpointChart(svg, sites, endpoints) {
  const counts = sites.map((s) => ({ name: s.name, n: endpoints.filter((e) => e.site === s.name && e.effective).length }));
  if (unchanged(svg, counts)) return;
  const max = Math.max(1, ...counts.map((c) => c.n));
  const width = 320 / Math.max(1, counts.length);
  svg.innerHTML = counts.map((c, i) => {
    const h = (c.n / max) * 110;
    return `<rect class="bar" x="${i * width + 10}" y="${130 - h}" width="${width - 20}" height="${h}"><title>${esc(c.name)}: ${c.n}</title></rect>
      <text class="chart-text" x="${i * width + width / 2}" y="${124 - h}" text-anchor="middle">${c.n}</text>
      <text class="chart-text" x="${i * width + width / 2}" y="148" text-anchor="middle">${esc(c.name)}</text>`;
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
  async update() {
    const [sites, clouds] = await Promise.all([api("GET", "/api/v1/sites"), api("GET", "/api/v1/providers")]);
    const cloudOf = Object.fromEntries(clouds.map((c) => [c.site, c]));
    fillTable('[data-testid="sites-table"]', sites.items.map((s) => `<tr><td>${esc(s.name)}</td><td>${esc(s.provider)}</td>
      <td data-testid="cloud-${esc(s.name)}">${cloudCell(s, cloudOf[s.name])}</td><td>${esc(s.gateways.join(", "))}</td><td>${esc(s.connections.join(", "))}</td><td>${esc(s.description)}</td></tr>`));
  },
};

VIEWS.gateways = {
  async update() {
    const gateways = await api("GET", "/api/v1/gateways");
    fillTable('[data-testid="gateways-table"]', gateways.items.map((g) => `<tr><td>${esc(g.name)}</td><td>${esc(g.site)}</td>
      <td>${esc(g.version || "-")}</td><td>${g.online ? "yes" : "no"}</td><td>${ago(g.last_seen)}</td><td>${esc(g.endpoint || "-")}</td>
      <td>${g.applied_revision ?? "-"}/${g.doc_revision}</td>
      <td>${g.tunnels.map((t) => `${esc(t.peer)}: ${t.handshake_age_s === null ? "no handshake" : Math.round(t.handshake_age_s) + "s"}, ${bytes(t.rx_bytes)} / ${bytes(t.tx_bytes)}${mtuNote(t)}`).join("<br>") || "-"}</td>
      <td>${g.nat_sessions ?? "-"}</td></tr>`));
  },
};

VIEWS.connections = {
  async mount(root) {
    const [networks, sites] = await Promise.all([api("GET", "/api/v1/networks"), api("GET", "/api/v1/sites")]);
    options($('[name="network"]', root), networks.items.map((n) => n.name));
    const names = sites.items.map((s) => s.name);
    options($('[name="site_a"]', root), names); options($('[name="site_b"]', root), names);
    if (names.length > 1) $('[name="site_b"]', root).value = names[1];
  },
  async update(root) {
    const connections = await api("GET", "/api/v1/connections");
    fillTable('[data-testid="connections-table"]', connections.items.map((c) => `<tr data-row="${esc(c.name)}">
      <td><a href="#" data-chart="${esc(c.name)}">${esc(c.name)}</a></td><td>${esc(c.network)}</td><td>${esc(c.site_a)} ↔ ${esc(c.site_b)}</td>
      <td>${healthCell(c.health)}</td><td>${c.mtu}</td><td>${c.keepalive}</td><td>${bytes(c.health.rx_bytes)} / ${bytes(c.health.tx_bytes)}</td>
      <td class="admin-only"><button class="small" data-toggle="${esc(c.name)}" data-enabled="${c.enabled}">${c.enabled ? "disable" : "enable"}</button>
        <button class="small danger" data-delete="connections/${esc(c.name)}">delete</button></td></tr>`));
    bindRowActions(root);
    $$("[data-toggle]", root).forEach((b) => b.addEventListener("click", () => act(() =>
      api("PATCH", `/api/v1/connections/${encodeURIComponent(b.dataset.toggle)}`, { enabled: b.dataset.enabled !== "true" }))));
    $$("[data-chart]", root).forEach((a) => a.addEventListener("click", (e) => { e.preventDefault(); state.chart = a.dataset.chart; refresh(); }));
    const chosen = state.chart || (connections.items[0] && connections.items[0].name);
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
    const [networks, sites] = await Promise.all([api("GET", "/api/v1/networks"), api("GET", "/api/v1/sites")]);
    options($('#pool-form [name="network"]', root), networks.items.map((n) => n.name));
    options($('#pool-form [name="site"]', root), sites.items.map((s) => s.name));
    $("#search", root).addEventListener("input", () => scheduleRefresh(150));
  },
  async update(root) {
    const query = $("#search", root).value.trim();
    const [endpoints, pools] = await Promise.all([api("GET", `/api/v1/endpoints${query ? `?q=${encodeURIComponent(query)}` : ""}`),
      api("GET", "/api/v1/pools")]);
    fillTable('[data-testid="endpoints-table"]', endpoints.items.map((e) => `<tr><td>${esc(e.network)}</td><td>${esc(e.ip)}</td>
      <td>${esc(e.mac || "-")}</td><td>${esc(e.gateway)}</td><td>${esc(e.site)}</td><td>${e.effective ? "yes" : "no"}</td>
      <td>${ago(e.first_seen * 1000)}</td></tr>`));
    $("#conflicts", root).innerHTML = endpoints.conflicts.map((c) => `<p class="state down">conflict: ${esc(c.ip)} in ${esc(c.network)} announced by ${esc(c.gateways.join(", "))}</p>`).join("");
    fillTable('[data-testid="pools-table"]', pools.items.map((p) => `<tr><td>${esc(p.name)}</td><td>${esc(p.site)}</td>
      <td>${esc(p.range)} (${p.size})</td><td class="admin-only"><button class="small danger" data-delete="pools/${esc(p.name)}">delete</button></td></tr>`));
    bindRowActions(root);
  },
};

VIEWS.nat = {
  async mount(root) {
    const gateways = await api("GET", "/api/v1/gateways");
    options($('#forward-form [name="gateway"]', root), gateways.items.map((g) => g.name));
  },
  async update(root) {
    const [forwards, egress, sites] = await Promise.all([api("GET", "/api/v1/forwards"), api("GET", "/api/v1/egress"),
      api("GET", "/api/v1/sites")]);
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
    bindRowActions(root);
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

VIEWS.audit = {
  async update() {
    const audit = await api("GET", "/api/v1/audit?limit=200");
    fillTable('[data-testid="audit-table"]', audit.items.map((a) => `<tr><td>${a.revision}</td><td>${ago(a.at)}</td><td>${esc(a.actor)}</td>
      <td>${esc(a.action)} ${esc(a.kind)} ${esc(a.name)}</td></tr>`));
  },
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

function bindRowActions(root) {
  $$("[data-delete]", root).forEach((button) => button.addEventListener("click", () => {
    const [kind, name] = button.dataset.delete.split("/");
    if (confirm(`Delete ${kind.replace(/s$/, "")} ${name}?`)) act(() => api("DELETE", `/api/v1/${kind}/${encodeURIComponent(name)}`));
  }));
}

async function act(call) {
  try { await call(); } catch (error) { alert(error.message); }
  refresh();
}

// start -------------------------------------------------------------------------------------------
if (state.token) signIn(state.token).catch(() => signOut(""));
else $("#login").hidden = false;
