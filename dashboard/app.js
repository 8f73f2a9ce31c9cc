// weir dashboard: reads only the HTTP API (/api/partitions, /api/cycles, /api/events).
// Plain ES module, no bundler; uPlot comes from /assets/uPlot.iife.min.js as window.uPlot.

const WINDOW_POINTS = 600; // 60 s of history at the default 100 ms cycle
const MAX_DECISIONS = 60;
const COLORS = {
  offered: "#d98e04",
  served: "#2f6fb3",
  used: "#3f9a5a",
  alloc: "#c0392b",
  velocity: "#7b52c4",
  idle: "#8a94a6",
  batch: "#b5651d",
};

const uPlot = /** @type {any} */ (window).uPlot;

/** Per partition: its chart data and uPlot instances. */
const partitions = new Map();
let lastCycle = -1;
/** startedAtMs of the last record applied: a lower cycle that started later is a new run. */
let lastStartedAtMs = -Infinity;
let redrawPending = false;

/**
 * Work conservation: the host's idle CPU (record.host.idleFraction, /proc/stat) and what the
 * batch partitions use of the capacity (their CPU used ÷ record.capacityCpuMillis), in %.
 */
const host = { t: [], idle: [], batch: [], chart: null, batchIds: new Set() };

/** State the browser test reads. */
const state = { cyclesSeen: 0, partitions, host, lastCycle: () => lastCycle };
/** @type {any} */ (window).weirDashboard = state;

const $ = (sel) => /** @type {HTMLElement} */ (document.querySelector(sel));

function fmtNumber(x, digits = 0) {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  return x.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}
const fmtCores = (cores) => (Number.isFinite(cores) ? `${fmtNumber(cores * 1000)}m` : "–");
const fmtMillis = (m) => (Number.isFinite(m) ? `${fmtNumber(m)}m` : "–");
const fmtPct = (f) => (Number.isFinite(f) ? `${fmtNumber(f * 100)}%` : "–");
const shortNumber = (v) =>
  Math.abs(v) >= 1e6
    ? `${+(v / 1e6).toFixed(1)}M`
    : Math.abs(v) >= 1e3
      ? `${+(v / 1e3).toFixed(1)}k`
      : `${+v.toFixed(2)}`;

function chartWidth(el) {
  return Math.max(200, Math.floor(el.getBoundingClientRect().width));
}

const fmtTime = (_u, ticks) =>
  ticks.map((t) => new Date(t * 1000).toLocaleTimeString("en-GB", { hour12: false }));

function makeChart(el, title, series, valueFmt, yMin = 0, xSpace = 55) {
  const opts = {
    title,
    width: chartWidth(el),
    height: 140,
    cursor: { drag: { x: false, y: false } },
    // The page-wide key names the colours; the card header shows the current values.
    legend: { show: false },
    scales: {
      x: { time: true },
      y: { range: (_u, _min, max) => [0, Math.max(yMin, max > 0 ? max * 1.1 : 1)] },
    },
    axes: [
      {
        stroke: "#777",
        grid: { stroke: "#8882" },
        ticks: { stroke: "#8882" },
        values: fmtTime,
        space: xSpace,
      },
      {
        stroke: "#777",
        grid: { stroke: "#8882" },
        ticks: { stroke: "#8882" },
        size: 44,
        values: (_u, ticks) => ticks.map(valueFmt),
      },
    ],
    series: [
      {},
      ...series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: 2,
        points: { show: false },
        ...(s.dash ? { dash: s.dash } : {}),
      })),
    ],
  };
  const data = [[], ...series.map(() => [])];
  return new uPlot(opts, data, el);
}

function ensurePartition(id) {
  let p = partitions.get(id);
  if (p) return p;
  const card = document.createElement("article");
  card.className = "card";
  card.dataset.partition = id;
  const h = document.createElement("h3");
  h.textContent = id;
  const alloc = document.createElement("span");
  alloc.className = "card-alloc";
  h.append(" ", alloc);
  const why = document.createElement("p");
  why.className = "why";
  const pps = document.createElement("div");
  const cpu = document.createElement("div");
  const vel = document.createElement("div");
  card.append(h, pps, cpu, vel, why);
  $("#cards").append(card);

  const row = document.createElement("tr");
  row.dataset.partition = id;
  const cells = {};
  for (const key of [
    "id",
    "offered",
    "served",
    "dropped",
    "used",
    "alloc",
    "velocity",
    "throttled",
    "bounds",
    "weight",
    "importance",
    "status",
  ]) {
    const td = document.createElement(key === "id" ? "th" : "td");
    if (key === "id") td.scope = "row";
    else if (key !== "status") td.className = "num";
    if (["throttled", "weight", "importance", "status"].includes(key)) td.classList.add("wide");
    td.dataset.col = key;
    row.append(td);
    cells[key] = td;
  }
  cells.id.textContent = id;
  $("#partitions tbody").append(row);

  p = {
    id,
    card,
    allocLabel: alloc,
    why,
    cells,
    t: [],
    offered: [],
    served: [],
    used: [],
    alloc: [],
    velocity: [],
    charts: {
      pps: makeChart(
        pps,
        "packets/s",
        // served first, offered (dashed) drawn over it: both stay visible when equal
        [
          { label: "served", color: COLORS.served },
          { label: "offered", color: COLORS.offered, dash: [6, 3] },
        ],
        shortNumber,
      ),
      cpu: makeChart(
        cpu,
        "CPU (cores)",
        [
          { label: "used", color: COLORS.used },
          { label: "allocated", color: COLORS.alloc },
        ],
        (v) => `${+v.toFixed(2)}`,
      ),
      velocity: makeChart(
        vel,
        "velocity (pkt/CPU-s)",
        [{ label: "velocity", color: COLORS.velocity }],
        shortNumber,
      ),
    },
  };
  partitions.set(id, p);
  return p;
}

/** Remove every partition not among `parts` (a record's): its card, table row and charts. */
function dropPartitionsBut(parts) {
  const keep = new Set(parts.map((part) => part.id));
  for (const [id, p] of partitions) {
    if (keep.has(id)) continue;
    for (const chart of Object.values(p.charts)) chart.destroy();
    p.card.remove();
    p.cells.id.parentElement.remove();
    host.batchIds.delete(id);
    partitions.delete(id);
  }
}

function setSpec(p, spec) {
  if (!spec) return;
  if (spec.kind === "batch") host.batchIds.add(p.id);
  else host.batchIds.delete(p.id);
  p.cells.bounds.textContent = `${fmtMillis(spec.minCpuMillis)}–${fmtMillis(spec.maxCpuMillis)}`;
  p.cells.weight.textContent = fmtNumber(spec.weight);
  p.cells.importance.textContent = String(spec.importance);
  p.card.dataset.kind = spec.kind;
}

function push(arr, v) {
  arr.push(v);
  if (arr.length > WINDOW_POINTS) arr.shift();
}

/** Fold one cycle record into the charts, the table and the decision stream. */
function applyRecord(record, { live }) {
  // Seen already (a replay), unless weir restarted: its cycles count from 1 again, and
  // waiting for them to pass the old run's would leave the page frozen for as long.
  if (record.cycle <= lastCycle && record.startedAtMs <= lastStartedAtMs) return;
  // A new run (weir restarted, or reloaded its config on SIGHUP): a partition it does not
  // manage leaves the page, instead of standing there with the old run's last figures.
  if (record.cycle <= lastCycle) dropPartitionsBut(record.partitions);
  lastCycle = record.cycle;
  lastStartedAtMs = record.startedAtMs;
  state.cyclesSeen++;
  const t = record.startedAtMs / 1000;
  let allocated = 0;
  for (const part of record.partitions) {
    const p = ensurePartition(part.id);
    const tp = part.throughput;
    const cpuMillis = part.directive?.cpuMillis ?? part.decision?.cpuMillis ?? null;
    const velocity =
      part.decision?.velocityPacketsPerCpuSec ?? tp?.rawVelocityPacketsPerCpuSec ?? null;
    if (cpuMillis !== null) allocated += cpuMillis;
    push(p.t, t);
    push(p.offered, tp ? tp.offeredPacketsPerSec : null);
    push(p.served, tp ? tp.servedPacketsPerSec : null);
    push(p.used, tp ? tp.cpuCores : null);
    push(p.alloc, cpuMillis === null ? null : cpuMillis / 1000);
    push(p.velocity, velocity);

    const c = p.cells;
    c.offered.textContent = fmtNumber(tp?.offeredPacketsPerSec);
    c.served.textContent = fmtNumber(tp?.servedPacketsPerSec);
    c.dropped.textContent = fmtNumber(tp?.droppedPacketsPerSec);
    c.used.textContent = tp ? fmtCores(tp.cpuCores) : "–";
    c.alloc.textContent = fmtMillis(cpuMillis);
    c.velocity.textContent = fmtNumber(velocity);
    c.throttled.textContent = tp ? fmtPct(tp.throttledFraction) : "–";
    c.status.textContent = part.error ? `${part.status}: ${part.error.code}` : part.status;
    p.cells.status.parentElement.dataset.status = part.status;
    p.allocLabel.textContent = [
      cpuMillis === null ? null : `${fmtMillis(cpuMillis)} allocated`,
      tp ? `${fmtCores(tp.cpuCores)} used` : null,
      tp
        ? `${fmtNumber(tp.offeredPacketsPerSec)} → ${fmtNumber(tp.servedPacketsPerSec)} pkt/s`
        : null,
    ]
      .filter(Boolean)
      .join(" · ");
    if (part.decision) p.why.textContent = part.decision.why;

    const d = part.decision;
    if (live && d && d.cpuMillis !== d.previousCpuMillis) addDecision(record, d);
  }
  applyHost(record);
  $("#cycle").textContent = String(record.cycle);
  $("#capacity").textContent = fmtMillis(record.capacityCpuMillis);
  $("#allocated").textContent = fmtMillis(allocated);
  $("#interval").textContent = `${record.intervalMs} ms`;
  scheduleRedraw();
}

/** The host's idle CPU and the batch share of capacity, one point per cycle (null: not known). */
function applyHost(record) {
  host.chart ??= makeChart(
    $("#host-chart"),
    "host CPU idle vs batch use (%)",
    [
      { label: "host idle", color: COLORS.idle },
      { label: "batch share", color: COLORS.batch },
    ],
    (v) => `${+v.toFixed(0)}`,
    100,
    // a wide chart: whole-second labels, not one per half second
    110,
  );
  const idle = record.host ? record.host.idleFraction * 100 : null;
  let batchMillis = 0;
  let batchSeen = 0;
  for (const part of record.partitions) {
    if (!host.batchIds.has(part.id) || !part.throughput) continue;
    batchMillis += part.throughput.cpuCores * 1000;
    batchSeen++;
  }
  const batch =
    batchSeen > 0 && record.capacityCpuMillis > 0
      ? (batchMillis / record.capacityCpuMillis) * 100
      : null;
  push(host.t, record.startedAtMs / 1000);
  push(host.idle, idle);
  push(host.batch, batch);
  $("#host-idle").textContent = idle === null ? "–" : `${fmtNumber(idle)}%`;
  $("#host-now").textContent = [
    record.host
      ? `${fmtNumber(record.host.busyCores, 2)} of ${record.host.cpus} CPUs busy · ${fmtNumber(idle)}% idle · steal ${fmtNumber(record.host.stealFraction * 100, 1)}%`
      : "host CPU not read",
    batch === null ? null : `batch ${fmtNumber(batch)}% of ${fmtMillis(record.capacityCpuMillis)}`,
  ]
    .filter(Boolean)
    .join(" · ");
}

function addDecision(record, d) {
  const li = document.createElement("li");
  const time = document.createElement("time");
  time.dateTime = new Date(record.startedAtMs).toISOString();
  time.textContent = new Date(record.startedAtMs).toLocaleTimeString("en-GB", { hour12: false });
  const who = document.createElement("strong");
  who.textContent = d.partition;
  const move = document.createElement("span");
  move.className = d.cpuMillis > d.previousCpuMillis ? "move up" : "move down";
  move.textContent = `${fmtMillis(d.previousCpuMillis)} → ${fmtMillis(d.cpuMillis)}`;
  const why = document.createElement("span");
  why.className = "why";
  why.textContent = d.why;
  li.append(time, " ", who, " ", move, " ", why);
  const list = $("#decisions");
  list.prepend(li);
  while (list.children.length > MAX_DECISIONS) list.lastElementChild?.remove();
  $("#no-decisions").hidden = true;
}

function scheduleRedraw() {
  if (redrawPending) return;
  redrawPending = true;
  requestAnimationFrame(() => {
    redrawPending = false;
    host.chart?.setData([host.t, host.idle, host.batch]);
    for (const p of partitions.values()) {
      p.charts.pps.setData([p.t, p.served, p.offered]);
      p.charts.cpu.setData([p.t, p.used, p.alloc]);
      p.charts.velocity.setData([p.t, p.velocity]);
    }
  });
}

function setPaused(paused) {
  const el = $("#state");
  el.textContent = paused ? "paused (not applying)" : "applying";
  el.classList.toggle("paused", paused);
}

async function getJson(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" } });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

async function refreshSpecs() {
  const snap = await getJson("/api/partitions");
  for (const part of snap.partitions) setSpec(ensurePartition(part.id), part.spec);
  setPaused(snap.paused);
}

function connect() {
  // ?since: the server replays the records made between /api/cycles and this connection.
  const es = new EventSource(lastCycle >= 0 ? `/api/events?since=${lastCycle}` : "/api/events");
  const streamEl = $("#stream");
  es.addEventListener("open", () => {
    streamEl.textContent = "live";
    streamEl.dataset.state = "live";
  });
  es.addEventListener("error", () => {
    streamEl.textContent = "reconnecting";
    streamEl.dataset.state = "down";
  });
  es.addEventListener("cycle", (ev) => applyRecord(JSON.parse(ev.data), { live: true }));
}

function resizeCharts() {
  if (host.chart) {
    const w = chartWidth(host.chart.root.parentElement);
    if (w !== host.chart.width) host.chart.setSize({ width: w, height: 140 });
  }
  for (const p of partitions.values()) {
    for (const chart of Object.values(p.charts)) {
      const w = chartWidth(chart.root.parentElement);
      if (w !== chart.width) chart.setSize({ width: w, height: 140 });
    }
  }
}

async function main() {
  try {
    await refreshSpecs();
    const { cycles } = await getJson(`/api/cycles?limit=${WINDOW_POINTS}`);
    for (const record of cycles) applyRecord(record, { live: false });
    // Seed the decision stream with the recent history's moves, newest on top.
    for (const record of cycles.slice(-200)) {
      for (const part of record.partitions) {
        const d = part.decision;
        if (d && d.cpuMillis !== d.previousCpuMillis) addDecision(record, d);
      }
    }
  } catch (err) {
    $("#stream").textContent = `error: ${err.message}`;
  }
  connect();
  // Bounds and the pause flag change rarely: poll them.
  setInterval(() => refreshSpecs().catch(() => {}), 5000);
  new ResizeObserver(() => resizeCharts()).observe($("#cards"));
}

main();
