// One case: what it computes, and the form that makes a job of it.

import { api } from "../api.js";
import { fill, h } from "../dom.js";
import { unavailableNote } from "./cases.js";
import { draftEditor } from "./draft.js";

export async function casePage({ main, params, signal }) {
  const { data: kase } = await api("GET", `/case/${encodeURIComponent(params[0])}`, { auth: false, signal });
  fill(main,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "/ui/" }, "Cases"), " › ",
      h("span", { "aria-current": "page" }, kase.title)),
    h("h1", {}, kase.title),
    h("p", { class: "lead" }, kase.description),
    kase.available === false ? unavailableNote(kase, { class: "unavailable-note callout" }) : null,
    caseFacts(kase),
    h("h2", {}, "New job"),
    draftEditor(kase, null),
  );
}

/** Resources and outputs of a case, folded away (they are reference, not the task). */
export function caseFacts(kase) {
  const outputs = kase.outputs || [];
  const res = kase.resources || {};
  return h("details", { class: "facts" },
    h("summary", {}, "What it runs and what it produces"),
    h("dl", {},
      res.walltime ? [h("dt", {}, "Time limit"), h("dd", {}, res.walltime)] : null,
      res.cpus ? [h("dt", {}, "Cores"), h("dd", {}, `${res.cpus} on ${res.nodes || 1} node(s)`)] : null),
    outputs.length ? h("ul", { class: "outputs-spec" }, outputs.map((o) =>
      h("li", {}, h("strong", {}, o.label || o.name), o.description ? ` — ${o.description}` : ""))) : null);
}
