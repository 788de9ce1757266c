// The gateway's JSON API: bearer token on /job routes, problem+json turned into ApiError.

import { forgetToken, getToken } from "./auth.js";

/** A 4xx or 5xx answer; `fields` maps a field name to what the server said about it. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.title = problem?.title || `HTTP ${status}`;
    this.problems = Array.isArray(problem?.errors) ? problem.errors : [];
  }

  get fields() {
    return Object.fromEntries(this.problems.map((p) => [p.name, p.detail]));
  }
}

/** The user must sign in (no token, or the server refused it). */
export class SignInNeeded extends Error {
  constructor(message = "Sign in to see your jobs.") {
    super(message);
  }
}

/**
 * Call the API: `api("PATCH", "/job/ID", {body})` → {data, headers, status}.
 * `auth: false` for the public catalog. Throws ApiError, SignInNeeded, or the fetch's own error.
 */
export async function api(method, path, { body, auth = true, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (auth) {
    const token = await getToken();
    if (!token) throw new SignInNeeded();
    headers.Authorization = `Bearer ${token}`;
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method, headers, signal, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  if (resp.status === 401 && auth) {
    forgetToken();
    throw new SignInNeeded("Your sign-in has expired: sign in again.");
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return { data, headers: resp.headers, status: resp.status };
}

/** The URLs of an RFC 8288 Link header by rel: {next: "...", prev: "..."}. */
export function links(header) {
  const found = {};
  for (const part of (header || "").split(",")) {
    const match = part.match(/<([^>]*)>\s*;\s*rel="?([^";]+)"?/);
    if (match) found[match[2]] = match[1];
  }
  return found;
}

let caseTitles = null;
/** Case titles by id, fetched once (the catalog is small and public). */
export async function caseTitle(id) {
  if (!caseTitles) {
    caseTitles = api("GET", "/case?page=1&per_page=100", { auth: false })
      .then(({ data }) => new Map(data.map((c) => [c.id, c.title])))
      .catch(() => new Map());
  }
  return (await caseTitles).get(id) || `Case ${id}`;
}
