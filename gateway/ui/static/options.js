// The options panel beside the message box: the echo agent's scripting (the message's `metadata.echo`,
// workers/agents/echo.py: `chunks`, `delay`, `finalState`, `failOnTurn`), a file to attach (a FilePart
// with its bytes in base64) and a DataPart (a JSON object). It shows what the next message will carry, and
// keeps its state in this browser.

import { element } from "./dom.js";
import { store, stored } from "./storage.js";

const KEY = "a2a-console.message-options";
// The echo agent's limits (EchoOptions).
const MAX_CHUNKS = 10000;
const MAX_DELAY_SECONDS = 3600;
// The gateway reads requests of up to 10 MiB (A2A_GATEWAY_MAX_BODY_BYTES); base64 takes 4 bytes for 3.
const MAX_FILE_BYTES = 5_000_000;
const ENDS = new Set(["", "completed", "input-required", "fail"]);

/** The presets, by their button's name: what each sets of the scripting fields. */
const PRESETS = {
  Instant: { chunks: "1", delay: "0", end: "" },
  "Stream slowly": { chunks: "20", delay: "0.5", end: "" },
  "Ask for input": { chunks: "", delay: "", end: "input-required" },
  Fail: { chunks: "", delay: "", end: "fail" },
};

const EMPTY = { chunks: "", delay: "", end: "", data: "", file: null };

/** A byte count for people: "11 bytes", "3.2 KB", "7.5 MB". */
function byteSize(count) {
  if (count < 1000) return `${count} byte${count === 1 ? "" : "s"}`;
  if (count < 1000 * 1000) return `${(count / 1000).toFixed(1)} KB`;
  return `${(count / 1000 / 1000).toFixed(1)} MB`;
}

async function base64Of(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let binary = "";
  for (let start = 0; start < bytes.length; start += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(start, start + 0x8000));
  }
  return btoa(binary);
}

function restored() {
  try {
    const saved = JSON.parse(stored(KEY) || "{}");
    const state = { ...EMPTY };
    for (const name of ["chunks", "delay", "data"]) {
      if (typeof saved[name] === "string") state[name] = saved[name];
    }
    if (ENDS.has(saved.end)) state.end = saved.end;
    const file = saved.file;
    if (file && typeof file.name === "string" && typeof file.bytes === "string") {
      const { name, mimeType, bytes, size } = file;
      state.file = { name, mimeType: String(mimeType || ""), bytes, size: Number(size) || 0 };
    }
    return state;
  } catch {
    return { ...EMPTY };
  }
}

/** What a data part's text holds: `{data}` (a JSON object) or `{problem}`. */
function parseData(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return {
      problem: `The data part is not JSON (${err.message}): type a JSON object, like {"city": "Lyon"}.`,
    };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    const kind = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
    return { problem: `The data part must be a JSON object, like {"city": "Lyon"}, not ${kind}.` };
  }
  return { data: value };
}

export class MessageOptions {
  /**
   * `elements`: the panel's `{presets, chunks, delay, end, file, fileInfo, data, problem, preview}`.
   * `text()`: the message box's text, for the preview.
   */
  constructor(elements, { text }) {
    this.elements = elements;
    this.text = text;
    this.state = restored();
    // The number of the turn the next message starts (the echo agent's `failOnTurn` counts from 1).
    this.turn = 1;
    // Whether the browser kept the attached file (it may be too large for its storage).
    this.fileKept = true;
    // Why the last file picked was not attached.
    this._fileProblem = null;
  }

  start() {
    const { presets, chunks, delay, end, file, data } = this.elements;
    presets.replaceChildren(
      ...Object.keys(PRESETS).map((name) =>
        element(
          "button",
          {
            type: "button",
            class: "secondary small",
            "data-testid": "preset",
            onclick: () => this.preset(name),
          },
          name,
        ),
      ),
    );
    for (const [field, name] of [
      [chunks, "chunks"],
      [delay, "delay"],
      [end, "end"],
      [data, "data"],
    ]) {
      field.value = this.state[name];
      field.addEventListener(field === end ? "change" : "input", () => {
        this.state[name] = field.value;
        this._changed();
      });
    }
    file.addEventListener("change", () => this._attach(file.files?.[0]));
    this._render();
  }

  /** Sets the scripting fields as preset `name` has them (attachments stay). */
  preset(name) {
    const preset = PRESETS[name];
    Object.assign(this.state, preset);
    this.elements.chunks.value = preset.chunks;
    this.elements.delay.value = preset.delay;
    this.elements.end.value = preset.end;
    this._changed();
  }

  /** The next message is the first of turn `turn` of its task. */
  setTurn(turn) {
    if (turn === this.turn) return;
    this.turn = turn;
    this._render();
  }

  /** The text changed: the preview shows it. */
  refresh() {
    this._render();
  }

  /** What the next message carries besides its text: `{metadata, parts}` (`metadata` null when there is
   * none), or `{problem, field}` when an option is not right. */
  chosen() {
    const { problems, echo, parts } = this._read();
    if (problems.length) return problems[0];
    return { metadata: Object.keys(echo).length ? { echo } : null, parts };
  }

  _read() {
    const { chunks, delay, end, data, file } = this.state;
    const problems = [];
    const echo = {};
    const count = chunks.trim();
    if (count) {
      const value = Number(count);
      if (/^\d+$/.test(count) && value >= 1 && value <= MAX_CHUNKS) {
        echo.chunks = value;
      } else {
        problems.push({
          field: this.elements.chunks,
          problem: `Chunks must be a whole number from 1 to ${MAX_CHUNKS}.`,
        });
      }
    }
    const seconds = delay.trim();
    if (seconds) {
      const value = Number(seconds);
      if (/^(\d+\.?\d*|\.\d+)$/.test(seconds) && value <= MAX_DELAY_SECONDS) {
        echo.delay = value;
      } else {
        problems.push({
          field: this.elements.delay,
          problem: `Delay must be a number of seconds from 0 to ${MAX_DELAY_SECONDS}.`,
        });
      }
    }
    if (end === "completed" || end === "input-required") echo.finalState = end;
    if (end === "fail") echo.failOnTurn = this.turn;
    const parts = [];
    if (file) {
      parts.push({ kind: "file", file: { name: file.name, mimeType: file.mimeType, bytes: file.bytes } });
    }
    if (data.trim()) {
      const parsed = parseData(data);
      if (parsed.problem) problems.push({ field: this.elements.data, problem: parsed.problem });
      else parts.push({ kind: "data", data: parsed.data });
    }
    return { problems, echo, parts };
  }

  async _attach(file) {
    const input = this.elements.file;
    if (!file) return;
    if (file.size > MAX_FILE_BYTES) {
      input.value = "";
      const limit = byteSize(MAX_FILE_BYTES);
      const size = byteSize(file.size);
      this._fileProblem = `${file.name} is ${size}: the console attaches files of up to ${limit}.`;
      this._render();
      return;
    }
    this._fileProblem = null;
    const bytes = await base64Of(file);
    this.state.file = {
      name: file.name,
      mimeType: file.type || "application/octet-stream",
      bytes,
      size: file.size,
    };
    // The picker may pick the same file again after "Remove".
    input.value = "";
    this._changed();
  }

  _detach() {
    this.state.file = null;
    this._fileProblem = null;
    this._changed();
  }

  _changed() {
    this.fileKept = store(KEY, JSON.stringify(this.state));
    if (!this.fileKept) store(KEY, JSON.stringify({ ...this.state, file: null }));
    this._render();
  }

  _render() {
    const { presets, chunks, delay, data, problem, preview, fileInfo } = this.elements;
    const current = [this.state.chunks.trim(), this.state.delay.trim(), this.state.end];
    for (const button of presets.children) {
      const preset = PRESETS[button.textContent];
      const pressed = [preset.chunks, preset.delay, preset.end].every((value, at) => value === current[at]);
      button.setAttribute("aria-pressed", pressed ? "true" : "false");
    }
    this._renderFile(fileInfo);
    const { problems, echo, parts } = this._read();
    for (const field of [chunks, delay, data]) {
      const wrong = problems.some((item) => item.field === field);
      if (wrong) field.setAttribute("aria-invalid", "true");
      else field.removeAttribute("aria-invalid");
    }
    const lines = problems.map((item) => item.problem);
    if (this._fileProblem) lines.push(this._fileProblem);
    problem.hidden = !lines.length;
    problem.textContent = lines.join("\n");
    preview.textContent = problems.length
      ? "Nothing can be sent until the options above are right."
      : this._preview(echo, parts);
  }

  /** The message's metadata and parts as they will go (a file's bytes summed up), as JSON: one line
   * for the metadata, one for each part. */
  _preview(echo, parts) {
    const text = this.text();
    const bytes = `(${byteSize(this.state.file?.size ?? 0)} in base64)`;
    const shown = [
      ...(text ? [{ kind: "text", text }] : []),
      ...parts.map((part) => (part.kind === "file" ? { kind: "file", file: { ...part.file, bytes } } : part)),
    ];
    const lines = ["{"];
    if (Object.keys(echo).length) lines.push(`  "metadata": ${JSON.stringify({ echo })},`);
    if (shown.length) {
      lines.push('  "parts": [');
      shown.forEach((part, index) => {
        lines.push(`    ${JSON.stringify(part)}${index < shown.length - 1 ? "," : ""}`);
      });
      lines.push("  ]");
    } else {
      lines.push('  "parts": []');
    }
    lines.push("}");
    return lines.join("\n");
  }

  _renderFile(info) {
    const file = this.state.file;
    info.hidden = !file;
    if (!file) {
      info.replaceChildren();
      return;
    }
    const kept = this.fileKept ? "" : " (too large to keep in this browser: gone after a reload)";
    const about = `${file.name} · ${file.mimeType} · ${byteSize(file.size)}${kept}`;
    info.replaceChildren(
      element("span", { "data-testid": "option-file-name" }, about),
      element(
        "button",
        {
          type: "button",
          class: "secondary small",
          "data-testid": "option-file-remove",
          onclick: () => this._detach(),
        },
        "Remove",
      ),
    );
  }
}
