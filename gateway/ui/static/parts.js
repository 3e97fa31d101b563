// How the parts of a message or an artifact are shown: text as text, a file by its name (a link only when
// its URI is http(s)), a data part as JSON, a tool call or other structured progress as an activity line.

import { element, timeElement } from "./dom.js";

export function textOf(parts) {
  return (parts || [])
    .filter((part) => part.kind === "text")
    .map((part) => part.text)
    .join("");
}

/** JSON on one line when short, else indented. */
function json(value) {
  const line = JSON.stringify(value);
  return line === undefined || line.length <= 80 ? String(line) : JSON.stringify(value, null, 2);
}

/** Whether `uri` may be a link: a `javascript:` (or `data:`, `blob:`…) URI from an agent would run or load
 * with the console's origin, where the credential is kept. */
function linkable(uri) {
  try {
    const { protocol } = new URL(uri, window.location.href);
    return protocol === "http:" || protocol === "https:";
  } catch {
    return false;
  }
}

/** A file part, by name or type (or its URI), linked when the URI is http(s). */
function fileElement(file) {
  const label = `File: ${file.name || file.mimeType || file.uri || "unnamed"}`;
  if (typeof file.uri === "string" && linkable(file.uri)) {
    return element(
      "a",
      { href: file.uri, target: "_blank", rel: "noopener noreferrer", "data-testid": "file-part" },
      label,
    );
  }
  return element("span", { "data-testid": "file-part" }, label);
}

/** The non-text parts of a message or artifact, shown after its text. */
export function otherParts(parts) {
  return (parts || [])
    .filter((part) => part.kind !== "text")
    .map((part) =>
      part.kind === "data"
        ? element("pre", { "data-testid": "data-part" }, json(part.data))
        : element("div", {}, fileElement(part.file || {})),
    );
}

/** A status message's DataPart: a tool call (README, "A Claude agent") or other structured progress.
 * `timestamp` null: the time is unknown (a message of the task's history carries none). */
export function dataActivity(data, timestamp) {
  const when = timestamp === null ? null : timeElement(timestamp);
  const tool = element("code", {}, String(data.tool ?? "?"));
  if (data.event === "tool_executing") {
    return element(
      "div",
      { class: "activity tool", "data-testid": "tool-event", "data-tool-event": data.event },
      when,
      element("span", {}, "Calling tool ", tool),
      data.input !== undefined ? element("pre", {}, json(data.input)) : null,
    );
  }
  if (data.event === "tool_completed") {
    const failed = Boolean(data.isError);
    return element(
      "div",
      {
        class: failed ? "activity tool error" : "activity tool",
        "data-testid": "tool-event",
        "data-tool-event": data.event,
      },
      when,
      element("span", {}, "Tool ", tool, failed ? " failed" : " returned"),
      element("pre", {}, typeof data.output === "string" ? data.output : json(data.output)),
    );
  }
  return element(
    "div",
    { class: "activity", "data-testid": "data-event" },
    when,
    element("span", {}, "Data"),
    element("pre", {}, json(data)),
  );
}

/** A message of the agent's in a bubble: its text, then its other parts. */
export function agentMessage(message, { failed = false } = {}) {
  return element(
    "div",
    { class: failed ? "message agent failed" : "message agent", "data-testid": "agent-message" },
    element("span", { class: "who" }, "Agent"),
    textOf(message.parts),
    ...otherParts(message.parts),
  );
}

/** A line saying the task's state changed, at `timestamp`. */
export function stateLine(state, timestamp) {
  return element(
    "div",
    { class: "activity", "data-testid": "state-change", "data-state": state },
    timeElement(timestamp),
    element("span", {}, `State: ${state}`),
  );
}
