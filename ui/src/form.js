// The job form, generated from a case's typed field tree: groups as sections; numbers as a slider and a number box
// that agree (min, max, step and units shown); choices as selects; booleans as switches; help under each field;
// the server's 422 shown next to each field it names. Nothing is checked here that the server checks: it is the
// one judge of a value, and its words are what the user reads.

import { fill, h, uid } from "./dom.js";
import { number } from "./format.js";

const LOG_STEPS = 1000; // slider positions of a logarithmic slider

/** Every leaf field of a tree, in order. */
export function leaves(fields) {
  return fields.flatMap((f) => (f.type === "group" ? leaves(f.fields || []) : [f]));
}

/**
 * Build the form. `job` is {job_title, description, values: {name: value}} (values may be partial).
 * Returns {element, collect(), setProblems(problems), clearProblems(), markSaved()}.
 */
export function jobForm(kase, job, { actions }) {
  const controls = new Map(); // name → {field, read(), box, error, dirty}
  const meta = new Map(); // "job_title" | "description" → {input, error}
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });

  const titleField = textField("job_title", "Job title", job.job_title || "", {
    required: true, maxlength: 200, help: "A name for this run, to find it again in your jobs.",
  }, meta);
  const descField = textField("description", "Description", job.description || "", {
    multiline: true, maxlength: 4000, help: "Optional notes for yourself.",
  }, meta);

  const values = job.values || {};
  const body = kase.fields.map((f) => (f.type === "group" ? group(f, values, controls) : leaf(f, values, controls)));

  const element = h("form", { class: "job-form", novalidate: true, onsubmit: (e) => e.preventDefault() },
    summary,
    h("fieldset", { class: "section" }, h("legend", {}, "Job"), titleField, descField),
    body,
    h("div", { class: "actions sticky" }, actions));

  return {
    element,
    /** {job_title, description, fields: [{name, value}]} with the fields the user touched. */
    collect() {
      const fields = [];
      for (const [name, c] of controls) if (c.dirty) fields.push({ name, value: c.read() });
      return { job_title: meta.get("job_title").input.value.trim(),
        description: meta.get("description").input.value, fields };
    },
    /** Show a 422's problems next to their fields, and a summary linking to each. */
    setProblems(problems, detail) {
      this.clearProblems();
      const items = [];
      for (const p of problems) {
        const target = controls.get(p.name) || meta.get(p.name);
        const label = target?.field?.label || (p.name === "job_title" ? "Job title" : p.name);
        if (target) {
          target.error.textContent = sentence(p.detail);
          target.error.hidden = false;
          target.input.setAttribute("aria-invalid", "true");
        }
        items.push(h("li", {}, target
          ? h("a", { href: `#${target.input.id}`, onclick: (e) => { e.preventDefault(); target.input.focus(); } },
            `${label}: ${p.detail}`)
          : `${label}: ${p.detail}`));
      }
      fill(summary, h("h2", {}, items.length ? "Please correct these values" : "Not saved"),
        items.length ? h("ul", {}, items) : h("p", {}, detail || ""));
      summary.hidden = false;
      summary.focus();
    },
    clearProblems() {
      summary.hidden = true;
      for (const target of [...controls.values(), ...meta.values()]) {
        target.error.hidden = true;
        target.error.textContent = "";
        target.input.removeAttribute("aria-invalid");
      }
    },
    /** After a save: what was sent is now the job's. */
    markSaved() {
      for (const c of controls.values()) c.dirty = false;
    },
  };
}

function sentence(text) {
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : "";
}

function group(spec, values, controls) {
  return h("fieldset", { class: "section", dataset: { group: spec.name } },
    h("legend", {}, spec.label || spec.name),
    spec.help ? h("p", { class: "help" }, spec.help) : null,
    spec.fields.map((f) => (f.type === "group" ? group(f, values, controls) : leaf(f, values, controls))));
}

function leaf(spec, values, controls) {
  const value = spec.name in values ? values[spec.name] : spec.default;
  const make = { float: numberField, int: numberField, choice: choiceField, bool: switchField }[spec.type]
    || stringField;
  return make(spec, value, controls);
}

// Shared parts of a field: label, help, the error slot, and the ids tying them to the control.
function parts(spec) {
  const id = `f-${spec.name}`;
  const help = spec.help ? h("p", { class: "help", id: `${id}-help` }, spec.help) : null;
  const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const described = [help && help.id, error.id].filter(Boolean).join(" ");
  return { id, help, error, described };
}

function register(controls, spec, input, error, read) {
  const entry = { field: spec, input, error, read, dirty: false };
  controls.set(spec.name, entry);
  return entry;
}

function labelText(spec) {
  return [spec.label || spec.name, spec.required && spec.default === null ? h("span", { class: "req" }, " (required)")
    : null];
}

function numberField(spec, value, controls) {
  const { id, help, error, described } = parts(spec);
  const isInt = spec.type === "int";
  const step = spec.step ?? (isInt ? 1 : "any");
  const hasRange = typeof spec.min === "number" && typeof spec.max === "number";
  const log = hasRange && spec.min > 0 && spec.max / spec.min >= 1000;
  const units = spec.units ? h("span", { class: "units", "aria-hidden": "true" }, spec.units) : null;
  const box = h("input", { type: "number", id, name: spec.name, inputmode: isInt ? "numeric" : "decimal",
    min: spec.min, max: spec.max, step, value: value ?? "", "aria-describedby": `${id}-range ${described}` });
  const slider = hasRange ? h("input", { type: "range", id: `${id}-slider`, class: "slider",
    min: log ? 0 : spec.min, max: log ? LOG_STEPS : spec.max, step: log ? 1 : step,
    "aria-label": `${spec.label} slider${spec.units ? ` (${spec.units})` : ""}`,
    "aria-describedby": `${id}-range` }) : null;
  const entry = register(controls, spec, box, error, () => readNumber(box.value));

  const toSlider = (v) => (log ? Math.round(LOG_STEPS * Math.log(v / spec.min) / Math.log(spec.max / spec.min)) : v);
  const fromSlider = (pos) => (log ? onGrid(spec.min * (spec.max / spec.min) ** (pos / LOG_STEPS), spec) : Number(pos));
  const syncSlider = () => {
    const v = Number(box.value);
    if (!slider || box.value === "" || !Number.isFinite(v)) return;
    slider.value = String(toSlider(Math.min(Math.max(v, spec.min), spec.max)));
    slider.setAttribute("aria-valuetext", `${number(v)}${spec.units ? ` ${spec.units}` : ""}`);
  };
  if (slider) {
    slider.addEventListener("input", () => {
      box.value = String(fromSlider(slider.value));
      entry.dirty = true;
      syncSlider();
    });
  }
  box.addEventListener("input", () => {
    entry.dirty = true;
    syncSlider();
  });
  syncSlider();

  const rangeText = hasRange
    ? `${number(spec.min)} to ${number(spec.max)}${spec.units ? ` ${spec.units}` : ""}${spec.step ? `, in steps of ${number(spec.step)}` : ""}`
    : (spec.units ? `In ${spec.units}` : "");
  return h("div", { class: "field number-field", dataset: { field: spec.name } },
    h("label", { for: id }, labelText(spec), spec.units ? h("span", { class: "sr-only" }, ` (${spec.units})`) : null),
    h("div", { class: "number-row" }, slider, h("span", { class: "box" }, box, units)),
    h("p", { class: "range", id: `${id}-range` }, rangeText, log ? " (the slider is logarithmic)" : ""),
    help, error);
}

// The box's text as JSON: a number when it is one; otherwise what was typed, for the server to refuse by name.
function readNumber(text) {
  const trimmed = text.trim();
  if (trimmed === "") return null;
  const v = Number(trimmed);
  return Number.isFinite(v) ? v : trimmed;
}

function onGrid(v, spec) {
  if (!spec.step) return Number(v.toPrecision(6));
  const decimals = Math.max(0, (String(spec.step).split(".")[1] || "").length);
  const snapped = spec.min + Math.round((v - spec.min) / spec.step) * spec.step;
  return Number(Math.min(Math.max(snapped, spec.min), spec.max).toFixed(decimals));
}

function choiceField(spec, value, controls) {
  const { id, help, error, described } = parts(spec);
  const select = h("select", { id, name: spec.name, "aria-describedby": described },
    (spec.options || []).map((o) => h("option", { value: String(o.value) }, o.label || String(o.value))));
  select.value = String(value ?? "");
  const entry = register(controls, spec, select, error, () => {
    const option = spec.options.find((o) => String(o.value) === select.value);
    return option ? option.value : select.value;
  });
  select.addEventListener("change", () => { entry.dirty = true; });
  return h("div", { class: "field", dataset: { field: spec.name } },
    h("label", { for: id }, labelText(spec)), select, help, error);
}

function switchField(spec, value, controls) {
  const { id, help, error, described } = parts(spec);
  const input = h("input", { type: "checkbox", role: "switch", id, name: spec.name, class: "switch",
    checked: Boolean(value), "aria-describedby": described });
  const entry = register(controls, spec, input, error, () => input.checked);
  input.addEventListener("change", () => { entry.dirty = true; });
  return h("div", { class: "field switch-field", dataset: { field: spec.name } },
    h("label", { for: id, class: "switch-label" }, input, h("span", { class: "track", "aria-hidden": "true" }),
      h("span", {}, labelText(spec))),
    help, error);
}

function stringField(spec, value, controls) {
  const { id, help, error, described } = parts(spec);
  const input = h("input", { type: "text", id, name: spec.name, value: value ?? "", maxlength: spec.max_length,
    "aria-describedby": described, autocomplete: "off" });
  const entry = register(controls, spec, input, error, () => input.value);
  input.addEventListener("input", () => { entry.dirty = true; });
  return h("div", { class: "field", dataset: { field: spec.name } },
    h("label", { for: id }, labelText(spec)), input, help, error);
}

// Job title and description: not case fields, but their problems come back by these names.
function textField(name, label, value, { required, maxlength, help, multiline }, meta) {
  const id = uid(name);
  const helpEl = h("p", { class: "help", id: `${id}-help` }, help);
  const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const attrs = { id, name, maxlength, required, "aria-describedby": `${id}-help ${id}-error` };
  const input = multiline ? h("textarea", { ...attrs, rows: 2 }) : h("input", { ...attrs, type: "text", autocomplete: "off" });
  input.value = value;
  meta.set(name, { input, error });
  return h("div", { class: "field" }, h("label", { for: id }, label), input, helpEl, error);
}
