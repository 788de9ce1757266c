// The user's jobs: newest first, filtered by status, refreshing itself while any job on the page is active.

import { api, caseTitle, links } from "../api.js";
import { fill, h } from "../dom.js";
import { ACTIVE, STATES, stateName, when } from "../format.js";
import { navigate } from "../router.js";

const PER_PAGE = 20;
const REFRESH_MS = 3000;

export async function jobsPage({ main, query, signal }) {
  const status = STATES.includes(query.get("status")) ? query.get("status") : "";
  const cursor = query.get("cursor") || "";
  const filter = h("select", { id: "status-filter", onchange: () => {
    navigate(`/ui/jobs${filter.value ? `?status=${filter.value}` : ""}`);
  } }, h("option", { value: "" }, "All"), STATES.map((s) => h("option", { value: s }, stateName(s))));
  filter.value = status;
  const body = h("div", { class: "jobs-body" }, h("p", {}, "Loading…"));
  fill(main,
    h("h1", {}, "Your jobs"),
    h("div", { class: "toolbar" }, h("label", { for: "status-filter" }, "Status "), filter,
      h("a", { href: "/ui/", class: "button secondary" }, "New job from a case")),
    body);
  const params = new URLSearchParams({ per_page: String(PER_PAGE) });
  if (status) params.set("status", status);
  if (cursor) params.set("cursor", cursor);
  const load = async () => {
    const { data, headers } = await api("GET", `/job?${params}`, { signal });
    const titles = await Promise.all(data.map((j) => caseTitle(j.case_id)));
    if (signal.aborted) return false;
    fill(body, jobsTable(data, titles, status), pager(cursor, links(headers.get("Link")).next, status));
    return data.some((j) => ACTIVE.has(j.status));
  };
  if (await load()) refreshWhileActive(load, signal, body);
}

// Reload the page's jobs every few seconds until none is active (or the user leaves the page).
async function refreshWhileActive(load, signal, body) {
  try {
    do {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, REFRESH_MS);
        signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
      });
      if (signal.aborted) return;
    } while (document.hidden || await load());
  } catch (error) {
    if (!signal.aborted) body.prepend(h("p", { class: "problem" }, `Stopped refreshing: ${error.message}`));
  }
}

function jobsTable(jobs, titles, status) {
  if (!jobs.length) {
    return h("p", {}, status ? `No ${stateName(status).toLowerCase()} jobs.` : "No jobs yet. ",
      status ? "" : h("a", { href: "/ui/" }, "Pick a case to make one."));
  }
  return h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Jobs" },
    h("table", { class: "jobs" },
      h("caption", { class: "sr-only" }, "Your jobs, newest first"),
      h("thead", {}, h("tr", {}, ["Job", "Case", "Status", "Made", "Last change"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, jobs.map((j, i) => h("tr", {},
        h("th", { scope: "row" }, h("a", { href: `/ui/job/${j.job_id}` }, j.job_title)),
        h("td", {}, titles[i]),
        h("td", {}, h("span", { class: `badge s-${j.status.toLowerCase()}` }, stateName(j.status))),
        h("td", {}, h("time", { datetime: j.created_at }, when(j.created_at))),
        h("td", {}, h("time", { datetime: j.updated_at }, when(j.updated_at))))))));
}

function pager(cursor, next, status) {
  const base = status ? `status=${status}&` : "";
  const nextCursor = next ? new URL(next, location.origin).searchParams.get("cursor") : null;
  if (!cursor && !nextCursor) return null;
  return h("nav", { class: "pager", "aria-label": "Job pages" },
    cursor ? h("a", { href: `/ui/jobs${status ? `?status=${status}` : ""}` }, "← Newest") : h("span"),
    nextCursor ? h("a", { href: `/ui/jobs?${base}cursor=${encodeURIComponent(nextCursor)}` }, "Older →") : h("span"));
}
