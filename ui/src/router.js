// History-API routing under /ui/: links inside the app change the page without a reload.

import { fill, h } from "./dom.js";
import { ApiError, SignInNeeded } from "./api.js";
import { signIn } from "./auth.js";

let routes = [];
let current = null; // {controller}
let firstRender = true;

/** Start routing with [[RegExp, page], ...]; each page is async ({main, params, query, signal}) => void. */
export function startRouter(table, startAt) {
  routes = table;
  document.addEventListener("click", onClick);
  window.addEventListener("popstate", () => render());
  if (startAt) history.replaceState(null, "", startAt);
  return render();
}

/** Go to an app URL ("/ui/job/ID"). */
export function navigate(url, { replace = false } = {}) {
  history[replace ? "replaceState" : "pushState"](null, "", url);
  return render();
}

/** Render the current URL again (after sign-in or sign-out). */
export function refresh() {
  return render();
}

function onClick(event) {
  const link = event.target.closest("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey
      || event.altKey || link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/ui/") || /\.[a-z0-9]+$/i.test(url.pathname)) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}

async function render() {
  current?.controller.abort();
  const controller = new AbortController();
  current = { controller };
  const main = document.getElementById("main");
  const path = location.pathname.replace(/\/+$/, "/");
  let page = notFound;
  let params = [];
  for (const [pattern, handler] of routes) {
    const match = path.match(pattern);
    if (match) {
      page = handler;
      params = match.slice(1).map(decodeURIComponent);
      break;
    }
  }
  markCurrentNav(path);
  const context = { main, params, query: new URLSearchParams(location.search), signal: controller.signal };
  try {
    await page(context);
  } catch (error) {
    if (controller.signal.aborted) return;
    showError(main, error);
  }
  if (!controller.signal.aborted) settle(main);
}

// After a page change, move focus to its heading so keyboard and screen-reader users start there.
function settle(main) {
  const heading = main.querySelector("h1");
  if (heading) document.title = `${heading.textContent} · simgate`;
  if (firstRender) {
    firstRender = false;
    return;
  }
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
  window.scrollTo(0, 0);
}

function markCurrentNav(path) {
  for (const link of document.querySelectorAll("header nav a")) {
    const section = link.dataset.section;
    const here = section === "jobs" ? /^\/ui\/jobs?(\/|$)/.test(path) : !/^\/ui\/jobs?(\/|$)/.test(path);
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function notFound({ main }) {
  fill(main, h("h1", {}, "Page not found"),
    h("p", {}, "There is nothing here. ", h("a", { href: "/ui/" }, "See all cases"), "."));
}

/** A page's failure, shown in place of the page. */
export function showError(main, error) {
  if (error instanceof SignInNeeded) {
    fill(main, h("h1", {}, "Sign in"), h("p", {}, error.message),
      h("button", { class: "primary", type: "button", onclick: () => signIn() }, "Sign in"));
    return;
  }
  const title = error instanceof ApiError ? (error.status === 404 ? "Not found" : error.title) : "Something went wrong";
  fill(main, h("h1", {}, title), h("p", { class: "problem" }, error.message || String(error)),
    h("p", {}, h("a", { href: "/ui/" }, "Back to the cases")));
}
