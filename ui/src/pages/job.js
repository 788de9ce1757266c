// One job. A DRAFT is edited here (its form); any other job shows its values, its status timeline, a progress bar
// while it runs, the failure reason, Cancel and Rerun, and its outputs: Download (the SAS URL is asked for on
// click), a preview of a CSV's first rows, and a line chart of a numeric CSV. It polls while the job is active.

import { api } from "../api.js";
import { announce, fill, h } from "../dom.js";
import { ACTIVE, size, stateName, value, when } from "../format.js";
import { lineChart } from "../chart.js";
import { parseCsv, readSome, table } from "../csv.js";
import { navigate } from "../router.js";
import { draftEditor } from "./draft.js";

const POLL_MS = 2000;
const PREVIEW_ROWS = 10;
const PREVIEW_BYTES = 2_000_000;
const PREVIEW_TEXT_BYTES = 8_000;

export async function jobPage({ main, params, signal }) {
  const id = params[0];
  let { data: job } = await api("GET", `/job/${encodeURIComponent(id)}`, { signal });
  const { data: kase } = await api("GET", `/case/${job.case_id}`, { auth: false, signal });
  if (job.status === "DRAFT") {
    const values = Object.fromEntries((job.values || []).map((v) => [v.name, v.value]));
    fill(main, crumbs(job), h("h1", {}, job.job_title), badgeLine(job, kase),
      draftEditor(kase, { ...job, values }));
    return;
  }
  const view = h("div", { class: "job" });
  fill(main, crumbs(job), view);
  const previews = new Map(); // output_id → rendered preview, kept across re-renders
  const draw = () => {
    const focused = document.activeElement?.id;
    fill(view, ...jobView(job, kase, previews));
    if (focused) document.getElementById(focused)?.focus();
  };
  draw();
  autoPreview(job, previews, draw, signal);
  follow().catch((error) => {
    if (!signal.aborted) view.prepend(h("p", { class: "problem" }, `Stopped following the job: ${error.message}`));
  });

  // Poll the cheap status route while the job is active; fetch the whole job when something changed.
  async function follow() {
    while (ACTIVE.has(job.status) && !signal.aborted) {
      await sleep(POLL_MS, signal);
      if (signal.aborted || document.hidden) continue;
      const { data: status } = await api("GET", `/job/${encodeURIComponent(id)}/status`, { signal });
      const same = status.status === job.status && (status.progress ?? null) === (job.progress ?? null)
        && (status.message ?? null) === (job.message ?? null);
      if (same) continue;
      const before = job.status;
      ({ data: job } = await api("GET", `/job/${encodeURIComponent(id)}`, { signal }));
      if (signal.aborted) return;
      draw();
      if (job.status !== before) announce(`Job ${stateName(job.status)}`);
    }
    autoPreview(job, previews, draw, signal);
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

function crumbs(job) {
  return h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "/ui/jobs" }, "Jobs"), " › ",
    h("span", { "aria-current": "page" }, job.job_title));
}

function badge(status) {
  return h("span", { class: `badge s-${status.toLowerCase()}` }, stateName(status));
}

function badgeLine(job, kase) {
  return h("p", { class: "job-meta" }, badge(job.status), " ",
    h("a", { href: `/ui/case/${job.case_id}` }, kase.title), ` · made ${when(job.created_at)} by ${job.user}`);
}

function jobView(job, kase, previews) {
  return [
    h("h1", {}, job.job_title),
    badgeLine(job, kase),
    job.description ? h("p", {}, job.description) : null,
    progress(job),
    job.status === "FAILED" ? h("div", { class: "callout failed" }, h("h2", {}, "The job failed"),
      h("p", {}, job.reason || "No reason was given.")) : null,
    actions(job),
    h("div", { class: "columns" },
      h("section", { "aria-labelledby": "values-h" }, h("h2", { id: "values-h" }, "Values"), valuesTable(job)),
      h("section", { "aria-labelledby": "history-h" }, h("h2", { id: "history-h" }, "Status"), timeline(job))),
    h("section", { "aria-labelledby": "outputs-h" }, h("h2", { id: "outputs-h" }, "Outputs"), outputs(job, previews)),
  ];
}

function progress(job) {
  if (!ACTIVE.has(job.status)) return null;
  const known = typeof job.progress === "number";
  const bar = h("progress", { id: "job-progress", max: 100, "aria-labelledby": "job-progress-label" });
  if (known) bar.value = job.progress;
  const words = known ? `${stateName(job.status)}: ${Math.round(job.progress)}%` : `${stateName(job.status)}…`;
  return h("div", { class: "progress" },
    h("p", { id: "job-progress-label" }, words, job.message ? h("span", { class: "message" }, ` — ${job.message}`) : ""),
    bar);
}

function actions(job) {
  const buttons = [];
  if (ACTIVE.has(job.status) && job.status !== "CANCELLING") {
    buttons.push(h("button", { type: "button", id: "cancel-job", class: "danger", onclick: async (e) => {
      e.currentTarget.disabled = true;
      await api("POST", `/job/${job.job_id}/cancel`);
      announce("Cancelling the job");
      await navigate(location.pathname, { replace: true });
    } }, "Cancel job"));
  }
  buttons.push(h("button", { type: "button", id: "rerun-job", class: "secondary", onclick: async (e) => {
    e.currentTarget.disabled = true;
    const { data } = await api("POST", `/job/${job.job_id}/copy`);
    announce("A copy to edit and run");
    await navigate(`/ui/job/${data.job_id}`);
  } }, "Rerun (copy)"));
  return h("div", { class: "actions" }, buttons);
}

function valuesTable(job) {
  return h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Values" },
    h("table", { class: "values" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Value"))),
      h("tbody", {}, (job.values || []).map((v) => h("tr", {},
        h("th", { scope: "row" }, v.label || v.name),
        h("td", {}, h("span", { class: "num" }, value(v.value)), v.units ? ` ${v.units}` : "",
          v.is_default ? h("span", { class: "default" }, " (default)") : ""))))));
}

function timeline(job) {
  return h("ol", { class: "timeline" }, (job.history || []).map((c) => h("li", { class: `s-${c.status.toLowerCase()}` },
    badge(c.status), " ", h("time", { datetime: c.at }, when(c.at)),
    c.by ? h("span", { class: "by" }, ` by ${c.by}`) : "",
    c.reason ? h("p", { class: "reason" }, c.reason) : null)));
}

function isCsv(o) {
  return /csv/i.test(o.content_type || "") || /\.csv$/i.test(o.file || o.name || "");
}

function isText(o) {
  return /^text\/plain/i.test(o.content_type || "") || /\.(log|txt|out|err)$/i.test(o.file || o.name || "");
}

function outputs(job, previews) {
  const list = job.outputs || [];
  if (!list.length) {
    return h("p", {}, job.status === "COMPLETED" ? "This job has no outputs." : "Outputs appear here when the job completes.");
  }
  return h("ul", { class: "outputs" }, list.map((o) => h("li", { class: "output" },
    h("div", { class: "output-head" },
      h("div", {}, h("strong", {}, o.label || o.name), h("span", { class: "meta" }, ` ${o.file || o.output_id} · ${size(o.size)}`)),
      h("div", { class: "output-buttons" },
        (isCsv(o) || isText(o)) && o.size > 0 && !previews.has(o.output_id) ? h("button", { type: "button", class: "secondary",
          id: `preview-${o.output_id}`, "aria-label": `Preview ${o.label || o.name}`,
          onclick: (e) => showPreview(job, o, previews, e.currentTarget) }, "Preview") : null,
        h("button", { type: "button", class: "primary", id: `download-${o.output_id}`,
          "aria-label": `Download ${o.label || o.name}`, onclick: (e) => download(job, o, e.currentTarget) }, "Download"))),
    previews.get(o.output_id) || null)));
}

async function download(job, output, button) {
  button.disabled = true;
  try {
    const { data } = await api("GET", `/job/${job.job_id}/output/${encodeURIComponent(output.output_id)}`);
    // The URL answers with Content-Disposition: attachment, so following it saves the file and leaves the page.
    const link = h("a", { href: data.url, download: output.file || output.name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    announce(`Downloading ${output.file || output.name}`);
  } finally {
    button.disabled = false;
  }
}

// When a job has ended, its first CSV output is previewed (or, when it failed, its error log); others on request.
function autoPreview(job, previews, draw, signal) {
  if (signal.aborted) return;
  const outputs = job.outputs || [];
  let first = null;
  if (job.status === "COMPLETED") first = outputs.find(isCsv);
  if (job.status === "FAILED") first = outputs.find((o) => isText(o) && /stderr/.test(o.output_id) && o.size > 0);
  if (first && !previews.has(first.output_id)) showPreview(job, first, previews, null, draw);
}

async function showPreview(job, output, previews, button, draw) {
  const box = h("div", { class: "preview", "aria-live": "polite" }, h("p", {}, "Loading a preview…"));
  previews.set(output.output_id, box);
  if (button) {
    button.closest(".output").append(box);
    button.remove();
  } else draw?.();
  try {
    const { data } = await api("GET", `/job/${job.job_id}/output/${encodeURIComponent(output.output_id)}`);
    const resp = await fetch(data.url, { cache: "no-store" });
    if (!resp.ok) throw new Error(`storage answered ${resp.status}`);
    const { text, partial } = await readSome(resp, isCsv(output) ? PREVIEW_BYTES : PREVIEW_TEXT_BYTES);
    if (isCsv(output)) fill(box, ...previewOf(table(parseCsv(text, { partial })), output, partial));
    else fill(box, ...textPreview(text, output, partial));
  } catch (error) {
    fill(box, h("p", { class: "problem" }, `No preview: ${error.message || error}. `,
      "The file can still be downloaded. (Locally, the browser must trust .local/certs/azurite.pem.)"));
  }
}

function textPreview(text, output, partial) {
  const name = output.label || output.name;
  return [h("h3", {}, partial ? `The first ${PREVIEW_TEXT_BYTES / 1000} kB of ${output.file || name}` : output.file || name),
    h("pre", { class: "log", tabindex: "0", "aria-label": name }, text)];
}

function previewOf({ header, rows, numeric }, output, partial) {
  const name = output.label || output.name;
  const parts = [h("h3", {}, `Preview: the first ${Math.min(PREVIEW_ROWS, rows.length)} of ${rows.length}${partial ? "+" : ""} rows`),
    h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": `First rows of ${name}` },
      h("table", { class: "csv" },
        h("thead", {}, h("tr", {}, header.map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows.slice(0, PREVIEW_ROWS).map((r) => h("tr", {},
          r.map((c, i) => h("td", { class: numeric.includes(i) ? "num" : null }, c)))))))];
  const chart = chartOf(header, rows, numeric, name);
  if (chart) parts.push(chart);
  return parts;
}

// A line chart when the first column is numeric and never decreases (a time or distance axis) and another is numeric.
function chartOf(header, rows, numeric, name) {
  if (rows.length < 2 || !numeric.includes(0) || numeric.length < 2) return null;
  const xs = rows.map((r) => Number(r[0]));
  if (xs.some((x, i) => i > 0 && x < xs[i - 1])) return null;
  const ys = numeric.filter((c) => c !== 0);
  const figure = h("figure", { class: "chart-box" });
  const pick = h("select", { id: `y-${name.replace(/\W+/g, "-")}`, onchange: () => plot(Number(pick.value)) },
    ys.map((c) => h("option", { value: String(c) }, header[c])));
  const plot = (c) => {
    const label = `Line chart of ${header[c]} against ${header[0]}, ${rows.length} points`;
    fill(figure,
      lineChart(rows.map((r) => [Number(r[0]), Number(r[c])]), { xTitle: header[0], yTitle: header[c], label,
        width: Math.round(Math.max(320, Math.min(640, window.innerWidth - 64))) }),
      h("figcaption", {}, `${header[c]} against ${header[0]} (${name})`));
  };
  plot(ys[0]);
  return h("div", { class: "chart-area" },
    h("h3", {}, "Chart"),
    ys.length > 1 ? h("p", { class: "chart-pick" }, h("label", { for: pick.id }, "Plot "), pick, ` against ${header[0]}`) : null,
    figure);
}
