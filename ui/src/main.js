// The simgate UI: cases, a case's job form, jobs, a job. Boots from /ui/config.json, then routes.

import "./styles.css";
import { fill, h } from "./dom.js";
import { currentUser, initAuth, onAuthChange, signIn, signOut } from "./auth.js";
import { refresh, startRouter } from "./router.js";
import { casesPage } from "./pages/cases.js";
import { casePage } from "./pages/case.js";
import { jobsPage } from "./pages/jobs.js";
import { jobPage } from "./pages/job.js";

const ROUTES = [
  [/^\/ui\/$/, casesPage],
  [/^\/ui\/cases$/, casesPage],
  [/^\/ui\/case\/([^/]+)$/, casePage],
  [/^\/ui\/jobs$/, jobsPage],
  [/^\/ui\/job\/([^/]+)$/, jobPage],
];

function renderAccount() {
  const box = document.getElementById("account");
  const user = currentUser();
  fill(box, ...(user
    ? [h("span", { class: "who" }, h("span", { class: "sr-only" }, "Signed in as "), user),
      h("button", { type: "button", class: "link", onclick: () => signOut() }, "Sign out")]
    : [h("button", { type: "button", class: "secondary", onclick: () => signIn() }, "Sign in")]));
}

async function boot() {
  const resp = await fetch("/ui/config.json", { cache: "no-store" });
  const config = resp.ok ? await resp.json() : {};
  const returnTo = await initAuth(config.auth);
  renderAccount();
  onAuthChange(() => {
    renderAccount();
    refresh();
  });
  await startRouter(ROUTES, returnTo);
}

boot().catch((error) => {
  fill(document.getElementById("main"),
    h("h1", {}, "The page could not start"), h("p", { class: "problem" }, String(error?.message || error)));
});
