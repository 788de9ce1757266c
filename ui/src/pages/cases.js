// The case gallery: a card per case, a page at a time, as the API pages them.

import { api, links } from "../api.js";
import { fill, h, svg } from "../dom.js";

const PER_PAGE = 6;

export async function casesPage({ main, query, signal }) {
  const page = Math.max(1, Number.parseInt(query.get("page") || "1", 10) || 1);
  const { data, headers } = await api("GET", `/case?page=${page}&per_page=${PER_PAGE}`, { auth: false, signal });
  const total = Number(headers.get("X-Total-Count") || data.length);
  const rel = links(headers.get("Link"));
  fill(main,
    h("h1", {}, "Simulation cases"),
    h("p", { class: "lead" }, "Pick a case, set its values and run it as a job on the cluster."),
    data.length ? h("ul", { class: "cards" }, data.map(card)) : h("p", {}, "There are no cases yet."),
    pager(page, Math.max(1, Math.ceil(total / PER_PAGE)), total, rel),
  );
}

function card(kase) {
  const unavailable = kase.available === false;
  return h("li", { class: unavailable ? "card unavailable" : "card" },
    thumbnail(kase),
    h("div", { class: "card-body" },
      h("h2", {}, h("a", { href: `/ui/case/${kase.id}`, class: "stretched" }, kase.title)),
      unavailable ? unavailableNote(kase) : null,
      h("p", { class: "clip" }, kase.description || ""),
      h("p", { class: "meta" }, `Case ${kase.id} · ${kase.name}`)));
}

/** Why a case cannot run where it is configured to, as the API says it (its `note`). */
export function unavailableNote(kase, attrs = {}) {
  return h("p", { class: "unavailable-note", ...attrs }, h("strong", {}, "Cannot run: "),
    kase.note || "its simulator lacks what it needs.");
}

// The case's picture if it has one, else a pattern drawn from its name (decorative: the title says it all).
function thumbnail(kase) {
  if (kase.thumbnail) return h("img", { class: "thumb", src: kase.thumbnail, alt: "", loading: "lazy" });
  let seed = 0;
  for (const ch of kase.name) seed = (seed * 31 + ch.charCodeAt(0)) >>> 0;
  const hue = seed % 360;
  const waves = [0, 1, 2].map((i) => svg("path", {
    d: `M0 ${40 + i * 18} C 60 ${20 + i * 18 + (seed % 17)}, 120 ${70 + i * 14}, 200 ${35 + i * 20} L200 120 L0 120 Z`,
    fill: `hsl(${(hue + i * 24) % 360} 60% ${72 - i * 12}%)`,
  }));
  return svg("svg", { class: "thumb", viewBox: "0 0 200 120", preserveAspectRatio: "none", "aria-hidden": "true",
    focusable: "false" },
  svg("rect", { width: 200, height: 120, fill: `hsl(${hue} 55% 90%)` }), ...waves,
  svg("text", { x: 16, y: 36, class: "thumb-text" }, kase.name.slice(0, 2).toUpperCase()));
}

function pager(page, last, total, rel) {
  const to = (url) => {
    const params = new URL(url, location.origin).searchParams;
    return `/ui/?page=${params.get("page") || 1}`;
  };
  return h("nav", { class: "pager", "aria-label": "Case pages" },
    rel.prev ? h("a", { href: to(rel.prev), rel: "prev" }, "← Previous") : h("span", { "aria-hidden": "true" }),
    h("span", {}, `Page ${page} of ${last} · ${total} case${total === 1 ? "" : "s"}`),
    rel.next ? h("a", { href: to(rel.next), rel: "next" }, "Next →") : h("span", { "aria-hidden": "true" }));
}
