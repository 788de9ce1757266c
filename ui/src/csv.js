// CSV for previews: RFC 4180 (quoted fields, doubled quotes, CRLF or LF), "#" comment lines skipped.

/** Rows of `text` as arrays of strings; a last line cut short by a partial read is dropped when `partial`. */
export function parseCsv(text, { partial = false } = {}) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i += 1; } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field === "") quoted = true;
    else if (ch === ",") { row.push(field); field = ""; } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i += 1;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += ch;
  }
  if (!partial && (field !== "" || row.length)) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => !(r.length === 1 && r[0] === "") && !String(r[0]).startsWith("#"));
}

/** {header, rows, numeric: [column indexes whose every value is a number]} */
export function table(rows) {
  const [header = [], ...body] = rows;
  const numeric = header.map((_, c) => c).filter((c) => body.length > 0
    && body.every((r) => r[c] !== undefined && r[c].trim() !== "" && Number.isFinite(Number(r[c]))));
  return { header, rows: body, numeric };
}

/** Read at most `limit` bytes of a response body as text; `partial` says whether it was cut short. */
export async function readSome(resp, limit) {
  const reader = resp.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
    if (total >= limit) {
      await reader.cancel();
      const bytes = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) { bytes.set(c, at); at += c.length; }
      return { text: new TextDecoder().decode(bytes.subarray(0, limit)), partial: true };
    }
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) { bytes.set(c, at); at += c.length; }
  return { text: new TextDecoder().decode(bytes), partial: false };
}
