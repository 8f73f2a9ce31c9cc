// Browser test of the dashboard (needs Debian's chromium at /usr/bin/chromium; never a
// downloaded browser). The page is served by the API over a real socket from a running
// Manager — weir's own policy and cycle — on simulated partitions (src/sim: CFS bandwidth
// hypervisor, queues, drifting CPU cost per packet), paced in real time: one 100 ms cycle of
// virtual time per 100 ms of wall time. The test moves traffic from one partition to another
// and checks that the charts, the table and the decision stream follow. It saves
// docs/dashboard.png (laptop) and docs/dashboard-phone.png (phone).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApi } from "../../src/api/app.ts";
import { type RunningApi, serveApi } from "../../src/api/server.ts";
import { parseConfig } from "../../src/manager/config.ts";
import type { Manager } from "../../src/manager/manager.ts";
import { buildManager } from "../../src/manager/wiring.ts";
import { hostCpuFromSamples } from "../../src/sensors/host-cpu.ts";
import { SimWorld } from "../../src/sim/world.ts";

const CHROMIUM = "/usr/bin/chromium";
const REPO = path.resolve(import.meta.dirname, "../..");
const DOCS = path.join(REPO, "docs");
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

// Offered load per partition, packets/s; the test changes these while the page watches.
const load = { web: 800, api: 3000, dns: 1000 };

// the simulated partitions, each in the simulated cgroup of its name
const net = { kind: "network", interfaces: ["sim"] };
const cfg = parseConfig({
  intervalMs: 100,
  capacity: { cpus: 2 },
  partitions: [
    { name: "web", cgroup: "web", ...net, min: "100m", max: "1800m", weight: 200, importance: 1 },
    { name: "api", cgroup: "api", ...net, min: "100m", max: "1800m", weight: 100, importance: 2 },
    { name: "dns", cgroup: "dns", ...net, min: "50m", max: "1000m", weight: 100, importance: 2 },
    { name: "batch", cgroup: "batch", kind: "batch", max: "2000m", weight: 50, importance: 5 },
  ],
});

let world: SimWorld;
let manager: Manager;
let api: RunningApi | null = null;
let pacer: NodeJS.Timeout | null = null;
let context: BrowserContext | null = null;
let userDataDir = "";
let page: Page;

/** The part of dashboard/app.js's `window.weirDashboard` this test reads (uPlot's data and series). */
interface DashboardState {
  cyclesSeen: number;
  partitions: Map<
    string,
    {
      charts: { pps: { data: number[][]; series: Array<{ label?: string }> } };
      cells: Record<string, HTMLElement>;
    }
  >;
}

/** What the page has: per partition, chart points and the table's cells. */
interface PageState {
  cyclesSeen: number;
  partitions: Record<
    string,
    { points: number; offeredMax: number; lastOffered: number; cells: Record<string, string> }
  >;
  decisions: number;
  canvases: number;
}

const readPage = (): Promise<PageState> =>
  page.evaluate(() => {
    const dash = (window as unknown as { weirDashboard: DashboardState }).weirDashboard;
    const partitions: PageState["partitions"] = {};
    for (const [id, p] of dash.partitions) {
      const pps = p.charts.pps;
      const offeredAt = pps.series.findIndex((x: { label?: string }) => x.label === "offered");
      const offered: number[] = pps.data[offeredAt] ?? [];
      const cells: Record<string, string> = {};
      for (const [k, td] of Object.entries(p.cells as Record<string, HTMLElement>))
        cells[k] = td.textContent ?? "";
      partitions[id] = {
        points: p.charts.pps.data[0]?.length ?? 0,
        offeredMax: Math.max(0, ...offered.filter((x) => Number.isFinite(x))),
        lastOffered: offered[offered.length - 1] ?? 0,
        cells,
      };
    }
    return {
      cyclesSeen: dash.cyclesSeen,
      partitions,
      decisions: document.querySelectorAll("#decisions li").length,
      canvases: document.querySelectorAll(".card canvas").length,
    };
  });

async function waitForPage(what: string, pred: (s: PageState) => boolean, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  let last: PageState | undefined;
  while (Date.now() < until) {
    last = await readPage();
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}; page had ${JSON.stringify(last)}`);
}

/**
 * A manager on `config` over the simulated world, one cycle now and one every 100 ms as the
 * world advances 100 ms. Virtual time starts at 0; the manager's clock is wall-clock-based (the
 * charts' time axis reads as today), and both advance together.
 */
function startSimManager(config: typeof cfg): void {
  const epochMs = Date.now() - world.nowMs();
  manager = buildManager(config, {
    now: () => epochMs + world.nowMs(),
    onlineCpus: world.hypervisor.cpus,
    actuators: { cgroup: world.hypervisor },
    openSensor: (p) => world.sensor(p.name),
    // the simulated machine as /proc/stat shows it: every cgroup's CPU busy, the rest idle
    hostCpu: { open: () => world.hostCpuSensor(), use: hostCpuFromSamples },
    redactedConfig: () => ({ source: "simulator", intervalMs: 100 }),
  }).manager;
  manager.runCycle();
  pacer = setInterval(() => {
    world.advance(100);
    manager.runCycle();
  }, 100);
}

const num = (cell: string | undefined) => Number((cell ?? "").replace(/[^\d.]/g, ""));

describe.skipIf(!fs.existsSync(CHROMIUM))(
  "dashboard in Debian Chromium (simulated partitions, real manager)",
  () => {
    beforeAll(async () => {
      world = new SimWorld({ cpus: 2, tickMs: 1, seed: 42 });
      world.addNetwork("web", { load: () => load.web, velocityPacketsPerCpuSec: 3500 });
      world.addNetwork("api", { load: () => load.api, velocityPacketsPerCpuSec: 4000 });
      world.addNetwork("dns", { load: () => load.dns, velocityPacketsPerCpuSec: 6000 });
      world.addBatch("batch");
      startSimManager(cfg);
      api = await serveApi(createApi({ view: manager }), { port: 0 });

      userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), `weirt-${process.pid}-chromium-`));
      context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 1366, height: 900 },
      });
      page = context.pages()[0] ?? (await context.newPage());
    });

    afterAll(async () => {
      if (pacer) clearInterval(pacer);
      await context?.close();
      await api?.close();
      manager?.shutdown("keep");
      if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
    });

    it("loads the page with a chart card and a table row per partition", async () => {
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(api!.url);
      const s = await waitForPage("four partitions with data", (p) =>
        ["web", "api", "dns", "batch"].every((id) => (p.partitions[id]?.points ?? 0) > 0),
      );
      // three uPlot charts per partition, and the host chart
      expect(s.canvases).toBe(12 + 1);
      expect(await page.locator("#partitions tbody tr").count()).toBe(4);
      expect(await page.locator("#stream").textContent()).toBe("live");
      expect(s.partitions.web!.cells.bounds).toBe("100m–1,800m");
      expect(errors).toEqual([]);
    });

    it("plots host idle % and batch share % of capacity, agreeing with the partitions' CPU", async () => {
      // 30 cycles (3 s) with host data in the chart
      await page.waitForFunction(
        () =>
          (
            window as unknown as { weirDashboard: { host: { idle: Array<number | null> } } }
          ).weirDashboard.host.idle.filter((x) => x !== null).length >= 30,
        undefined,
        { timeout: 30_000 },
      );
      const h = await page.evaluate(() => {
        type Chart = { data: Array<Array<number | null>>; series: Array<{ label?: string }> };
        const dash = (
          window as unknown as {
            weirDashboard: {
              host: { chart: Chart; idle: Array<number | null>; batch: Array<number | null> };
              partitions: Map<string, { charts: { cpu: Chart } }>;
            };
          }
        ).weirDashboard;
        const chart = dash.host.chart;
        // The last 20 cycles: host idle as plotted, and 1 - sum of every partition's CPU used
        // (cores, from the CPU charts) / 2 CPUs: the same sim machine seen two ways.
        const n = 20;
        const idle = chart.data[1]!.slice(-n);
        const batch = chart.data[2]!.slice(-n);
        const usedSum = Array.from({ length: n }, (_, i) => {
          let sum = 0;
          for (const p of dash.partitions.values()) sum += p.charts.cpu.data[1]!.slice(-n)[i] ?? 0;
          return sum;
        });
        // Pixels of the two series' colours on the chart's canvas: it is drawn, not only fed.
        const canvas = document.querySelector("#host-card canvas") as HTMLCanvasElement;
        const px = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
        const near = (r: number, g: number, b: number) => {
          let count = 0;
          for (let i = 0; i < px.length; i += 4)
            if (
              Math.abs(px[i]! - r) < 24 &&
              Math.abs(px[i + 1]! - g) < 24 &&
              Math.abs(px[i + 2]! - b) < 24 &&
              px[i + 3]! > 200
            )
              count++;
          return count;
        };
        return {
          labels: chart.series.map((x) => x.label ?? ""),
          idle,
          batch,
          usedSum,
          idlePixels: near(0x8a, 0x94, 0xa6),
          batchPixels: near(0xb5, 0x65, 0x1d),
          fact: document.querySelector("#host-idle")?.textContent ?? "",
          caption: document.querySelector("#host-now")?.textContent ?? "",
        };
      });
      expect(h.labels.slice(1)).toEqual(["host idle", "batch share"]);
      for (const v of [...h.idle, ...h.batch]) {
        expect(Number.isFinite(v)).toBe(true);
        expect(v).toBeGreaterThanOrEqual(0);
      }
      for (const v of h.idle) expect(v).toBeLessThanOrEqual(100);
      const mean = (xs: Array<number | null>) =>
        xs.reduce<number>((s, x) => s + (x ?? 0), 0) / xs.length;
      // USER_HZ ticks round each 100 ms window by up to a tick per field: a few % per point, and
      // the partitions' CPU comes from the same sim cgroups; 5 points of % on the mean is generous.
      expect(Math.abs(mean(h.idle) - (1 - mean(h.usedSum) / 2) * 100)).toBeLessThan(5);
      expect(h.idlePixels + h.batchPixels).toBeGreaterThan(100);
      expect(h.idlePixels).toBeGreaterThan(0);
      expect(h.fact).toMatch(/^\d+%$/);
      expect(h.caption).toMatch(/of 2 CPUs busy/);
    });

    it("charts grow as cycle records stream in", async () => {
      const before = await readPage();
      const after = await waitForPage(
        "more chart points",
        (p) => (p.partitions.web?.points ?? 0) >= (before.partitions.web?.points ?? 0) + 10,
      );
      expect(after.cyclesSeen).toBeGreaterThan(before.cyclesSeen);
    });

    it("follows a shift of traffic from api to web: charts, table and decisions", async () => {
      // Let the allocation settle on the first load pattern.
      const settled = await waitForPage(
        "web offered ~800 pkt/s",
        (p) => p.partitions.web!.lastOffered > 400 && p.partitions.web!.lastOffered < 1400,
      );
      const webAllocBefore = num(settled.partitions.web!.cells.alloc);
      const webMaxBefore = settled.partitions.web!.offeredMax;
      expect(webMaxBefore).toBeLessThan(2000);

      load.web = 5000;
      load.api = 800;

      const shifted = await waitForPage("web offered ~5000 pkt/s in the chart and table", (p) => {
        const web = p.partitions.web!;
        return web.offeredMax > 4000 && num(web.cells.offered) > 4000;
      });
      // weir moves CPU to web: its allocation grows, shown in the table and the decision stream.
      const moved = await waitForPage(
        "web's allocation to grow",
        (p) => num(p.partitions.web!.cells.alloc) > webAllocBefore + 300,
      );
      expect(moved.decisions).toBeGreaterThan(0);
      expect(shifted.partitions.web!.offeredMax).toBeGreaterThan(webMaxBefore * 2);
      const firstDecision = await page.locator("#decisions li").first().textContent();
      expect(firstDecision).toMatch(/→/);

      // Let the charts show the shift, then take the laptop screenshot.
      await new Promise((r) => setTimeout(r, 6000));
      fs.mkdirSync(DOCS, { recursive: true });
      await page.screenshot({ path: path.join(DOCS, "dashboard.png"), fullPage: true });
      expect(fs.statSync(path.join(DOCS, "dashboard.png")).size).toBeGreaterThan(20_000);
    });

    it("is readable on a phone: one column, no sideways scrolling of the page", async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.waitForTimeout(500);
      const layout = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        cardWidths: [...document.querySelectorAll(".card")].map(
          (c) => c.getBoundingClientRect().width,
        ),
        cardLefts: [...document.querySelectorAll(".card")].map(
          (c) => c.getBoundingClientRect().left,
        ),
        canvasWidths: [...document.querySelectorAll(".card canvas")].map(
          (c) => c.getBoundingClientRect().width,
        ),
      }));
      expect(layout.scrollWidth).toBeLessThanOrEqual(390);
      // one column: every card starts at the same x and fills the width
      expect(new Set(layout.cardLefts.map(Math.round)).size).toBe(1);
      for (const w of layout.cardWidths) expect(w).toBeGreaterThan(330);
      for (const w of layout.canvasWidths) expect(w).toBeLessThanOrEqual(390);
      await page.screenshot({ path: path.join(DOCS, "dashboard-phone.png") });
    });

    it("drops a partition the next run does not manage (weir restarted or reloaded)", async () => {
      // what `weir run` does on SIGHUP with dns removed from the file: the API closes, and a
      // manager on the new config serves it again at the same address, its cycles from 1
      const port = Number(new URL(api!.url).port);
      const before = (await readPage()).cyclesSeen;
      if (pacer) clearInterval(pacer);
      await api!.close();
      manager.shutdown("keep");
      startSimManager({ ...cfg, partitions: cfg.partitions.filter((p) => p.name !== "dns") });
      api = await serveApi(createApi({ view: manager }), { port });
      const after = await waitForPage(
        "the new run's records without dns",
        (s) => !("dns" in s.partitions) && s.cyclesSeen > before + 10,
      );
      expect(Object.keys(after.partitions).sort()).toEqual(["api", "batch", "web"]);
      // its card and table row are gone too, not only its entry; the others go on
      const left = await page.evaluate(() => ({
        cards: [...document.querySelectorAll("#cards .card")].map(
          (c) => (c as HTMLElement).dataset.partition,
        ),
        rows: [...document.querySelectorAll("#partitions tbody tr")].map(
          (r) => (r as HTMLElement).dataset.partition,
        ),
      }));
      expect(left.cards.sort()).toEqual(["api", "batch", "web"]);
      expect(left.rows.sort()).toEqual(["api", "batch", "web"]);
      await waitForPage(
        "the next records",
        (s) => s.cyclesSeen > after.cyclesSeen + 10 && s.partitions.web!.cells.status === "ok",
      );
    });
  },
);
