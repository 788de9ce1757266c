// Formatting shared by the pages: times, sizes, numbers, job states.

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export const ACTIVE = new Set(["SUBMITTED", "QUEUED", "RUNNING", "FINALIZING", "CANCELLING"]);
export const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
export const STATES = ["DRAFT", "SUBMITTED", "QUEUED", "RUNNING", "FINALIZING", "COMPLETED", "CANCELLING",
  "CANCELLED", "FAILED"];

/** "7 Nov 2026, 14:03:12" in the reader's locale, or "" for nothing. */
export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date);
}

/** "12.4 kB" */
export function size(bytes) {
  if (bytes === null || bytes === undefined) return "";
  const units = ["bytes", "kB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A number for people: "25 000", "0.002", "1.5e-7". */
export function number(value) {
  if (typeof value !== "number") return String(value);
  if (value !== 0 && (Math.abs(value) < 1e-4 || Math.abs(value) >= 1e9)) return value.toExponential(3);
  return value.toLocaleString(undefined, { maximumFractionDigits: 6 });
}

/** A value of any field type as text. */
export function value(v) {
  if (v === true) return "on";
  if (v === false) return "off";
  if (v === null || v === undefined || v === "") return "—";
  return typeof v === "number" ? number(v) : String(v);
}

/** "Running" for "RUNNING". */
export function stateName(state) {
  return state.charAt(0) + state.slice(1).toLowerCase();
}
