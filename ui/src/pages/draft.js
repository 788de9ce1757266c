// Editing a DRAFT job (or a new one, not yet made): Save sets its values, Run saves then runs it.

import { api, ApiError, SignInNeeded } from "../api.js";
import { currentUser, signIn } from "../auth.js";
import { announce, h, uid } from "../dom.js";
import { jobForm } from "../form.js";
import { navigate } from "../router.js";

/** The form for `kase`, editing `job` (null: Save makes a new job of the case). */
export function draftEditor(kase, job) {
  let jobId = job?.job_id || null;
  const status = h("p", { class: "save-status", role: "status" });
  if (!currentUser()) {
    const form = jobForm(kase, job || {}, { actions: [
      h("p", { class: "sign-in-note" }, "Sign in to make a job of this case."),
      h("button", { type: "button", class: "primary", onclick: () => signIn() }, "Sign in")] });
    return form.element;
  }
  // A case whose simulator lacks what it needs can be edited and saved, not run: the API would refuse (409).
  const blocked = kase.available === false;
  const why = blocked ? h("p", { class: "run-note", id: uid("run-note") },
    `Run is not possible: ${kase.note || "the case's simulator lacks what it needs."}`) : null;
  const save = h("button", { type: "button", class: "secondary", onclick: () => act(false) }, "Save");
  const run = h("button", { type: "button", class: "primary", onclick: () => act(true), disabled: blocked,
    "aria-describedby": why?.id, title: blocked ? kase.note : null }, "Run");
  const extra = job ? deleteButton(job) : null;
  const form = jobForm(kase, job || {}, { actions: [save, run, extra, status, why] });

  async function act(andRun) {
    for (const b of [save, run]) b.disabled = true;
    status.textContent = andRun ? "Saving and starting…" : "Saving…";
    form.clearProblems();
    try {
      const { job_title: title, description, fields } = form.collect();
      if (!jobId) {
        const { data } = await api("POST", "/job", { body: { case_id: kase.id, job_title: title,
          ...(description ? { description } : {}) } });
        jobId = data.job_id;
        history.replaceState(null, "", `/ui/job/${jobId}`); // a reload now shows this draft
      }
      await api("PATCH", `/job/${jobId}`, { body: { job_title: title, description, fields } });
      form.markSaved();
      if (andRun) {
        await api("POST", `/job/${jobId}`);
        announce("Job started");
        await navigate(`/ui/job/${jobId}`, { replace: true });
        return;
      }
      status.textContent = `Saved at ${new Date().toLocaleTimeString()}.`;
      announce("Saved");
    } catch (error) {
      status.textContent = "";
      if (error instanceof SignInNeeded) status.textContent = error.message;
      else if (error instanceof ApiError) form.setProblems(error.problems, error.message);
      else form.setProblems([], String(error.message || error));
    } finally {
      save.disabled = false;
      run.disabled = blocked;
    }
  }
  return form.element;
}

function deleteButton(job) {
  const button = h("button", { type: "button", class: "danger", onclick: async () => {
    if (button.dataset.armed !== "yes") {
      button.dataset.armed = "yes";
      button.textContent = "Really delete?";
      return;
    }
    await api("DELETE", `/job/${job.job_id}`);
    announce("Job deleted");
    await navigate("/ui/jobs");
  } }, "Delete");
  return button;
}
