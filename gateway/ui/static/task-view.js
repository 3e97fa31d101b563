// One task on the page, drawn from its events (ARCHITECTURE.md, "Two views of one event log").
//
// The timeline holds one entry per turn: the user's message, then what happened in order (state changes,
// tool calls as they happen, the artifacts streamed, the agent's closing message). Artifacts are keyed
// by artifactId: `append:true` adds a chunk's parts, `append:false` starts the artifact again (a retried
// agent attempt restarts its output), so the text shown is exactly what the log says, never doubled.

import { element, timeElement } from "./dom.js";

export const TERMINAL = new Set(["completed", "canceled", "failed", "rejected"]);
// A2A 0.2.5: the task waits for the client; the same task takes the next message.
export const INTERRUPTED = new Set(["input-required", "auth-required"]);

function textOf(parts) {
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
function otherParts(parts) {
  return (parts || [])
    .filter((part) => part.kind !== "text")
    .map((part) =>
      part.kind === "data"
        ? element("pre", {}, json(part.data))
        : element("div", {}, fileElement(part.file || {})),
    );
}

/** A status message's DataPart: a tool call (README, "A Claude agent") or other structured progress. */
function dataActivity(data, timestamp) {
  const when = timeElement(timestamp);
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

class ArtifactView {
  constructor(artifact) {
    this.id = artifact.artifactId;
    this.name = element("span", { class: "who" }, artifact.name || "Artifact");
    this.text = element("div", { class: "artifact-text", "data-testid": "artifact-text" });
    this.parts = element("div", { class: "artifact-parts" });
    this.root = element(
      "section",
      { class: "artifact", "data-testid": "artifact", "data-artifact-id": this.id, "aria-busy": "true" },
      this.name,
      this.text,
      this.parts,
    );
  }

  get textContent() {
    return this.text.textContent;
  }

  add(artifact, append) {
    if (!append) {
      this.text.replaceChildren();
      this.parts.replaceChildren();
    }
    if (artifact.name) this.name.textContent = artifact.name;
    // A text node per chunk: the text grows without re-laying out what is already there.
    const text = textOf(artifact.parts);
    if (text) this.text.append(document.createTextNode(text));
    this.parts.append(...otherParts(artifact.parts));
  }

  done() {
    this.root.setAttribute("aria-busy", "false");
  }
}

class Turn {
  constructor() {
    this.user = null;
    this.ended = false;
    this.userSlot = element("div", { class: "user-slot" });
    this.artifactViews = [];
    this.root = element("li", { class: "turn", "data-testid": "turn" }, this.userSlot);
  }

  append(node) {
    this.root.append(node);
  }

  setUser(message) {
    if (this.user) return;
    this.user = message;
    this.userSlot.replaceChildren(
      element(
        "div",
        { class: "message user", "data-testid": "user-message" },
        element("span", { class: "who" }, "You"),
        textOf(message.parts),
        ...otherParts(message.parts),
      ),
    );
  }
}

export class TaskView {
  /**
   * `elements`: `{timeline, state, error}` of the task panel. `onState(state)` is called when the state
   * or the finished flag changes.
   */
  constructor(elements, { taskId, onState }) {
    this.elements = elements;
    this.taskId = taskId;
    this.onState = onState;
    this.contextId = null;
    this.state = null;
    this.error = null;
    // True once the event that ends the stream (task.completed in a terminal state, task.error) is shown.
    this.finished = false;
    this.turns = [];
    this.artifacts = new Map();
    this.shownMessages = new Set();
    elements.timeline.replaceChildren();
    elements.state.textContent = "";
    elements.state.dataset.state = "";
    elements.error.hidden = true;
    elements.error.textContent = "";
  }

  get terminal() {
    return TERMINAL.has(this.state) || this.error !== null;
  }

  get interrupted() {
    return INTERRUPTED.has(this.state) && this.error === null;
  }

  apply(event) {
    switch (event.type) {
      case "task.created":
        this.applyTask(event.task);
        break;
      case "task.status":
        this._status(event.status);
        break;
      case "task.progress":
        this._progress(event.artifact, event.append === true, event.lastChunk === true);
        break;
      case "task.completed":
        this._completed(event.task);
        break;
      case "task.error":
        this._failed(event.error || {});
        break;
      default:
        break;
    }
  }

  /** A whole Task at its start: the send's result, `task.created`, or a snapshot standing in for the
   * beginning of a trimmed log. */
  applyTask(task) {
    // A snapshot of a finished task ends its stream as task.completed would.
    if (TERMINAL.has(task.status.state)) {
      this._completed(task);
      return;
    }
    this.contextId = task.contextId;
    this._users(task.history);
    this._artifacts(task, false);
    this._setState(task.status.state, task.status.timestamp);
  }

  /** The Task as `tasks/get` or `tasks/cancel` returned it. When the stream cannot deliver the end
   * (`settle`), its artifacts replace what was streamed: they are the gateway's record. */
  applyResult(task, { settle = false } = {}) {
    if (settle) this._completed(task);
    else this._setState(task.status.state, task.status.timestamp);
  }

  /** The user sent a follow-up: it opens the next turn (unless the stream already did). */
  userMessageSent(message) {
    // A fast turn may have ended, its message taken from the history, before the send's answer came.
    if (this.turns.some((item) => item.user?.messageId === message.messageId)) return;
    const turn = this.turns.at(-1);
    if (turn && !turn.ended && !turn.user && this.turns.length > 1) turn.setUser(message);
    else this._newTurn().setUser(message);
  }

  _newTurn() {
    const turn = new Turn();
    this.turns.push(turn);
    this.elements.timeline.append(turn.root);
    return turn;
  }

  _turn() {
    return this.turns.at(-1) || this._newTurn();
  }

  /** The i-th user message of the history starts the i-th turn. */
  _users(history) {
    const users = (history || []).filter((message) => message.role === "user");
    users.forEach((message, index) => {
      if (index === this.turns.length) this._newTurn();
      if (index < this.turns.length) this.turns[index].setUser(message);
    });
  }

  _status(status) {
    const last = this.turns.at(-1);
    // A turn after an interrupted one starts when the agent starts working on the new message.
    if (status.state === "working" && (!last || last.ended)) this._newTurn();
    this._setState(status.state, status.timestamp);
    const message = status.message;
    if (!message || this.shownMessages.has(message.messageId)) return;
    this.shownMessages.add(message.messageId);
    const turn = this._turn();
    const data = (message.parts || []).filter((part) => part.kind === "data");
    for (const part of data) turn.append(dataActivity(part.data || {}, status.timestamp));
    const text = textOf(message.parts);
    if (text) {
      turn.append(
        element(
          "div",
          { class: "activity", "data-testid": "agent-note" },
          timeElement(status.timestamp),
          element("span", {}, text),
        ),
      );
    }
  }

  _progress(artifact, append, lastChunk) {
    let view = this.artifacts.get(artifact.artifactId);
    let turn = view ? this.turns.find((item) => item.artifactViews.includes(view)) : null;
    if (!view) {
      view = new ArtifactView(artifact);
      this.artifacts.set(view.id, view);
      turn = this._turn();
      turn.artifactViews.push(view);
    }
    // The reply stays below what happened before its latest chunk (a tool call in the middle of it).
    if (turn && turn.root.lastElementChild !== view.root) turn.append(view.root);
    view.add(artifact, append);
    if (lastChunk) view.done();
  }

  /** A Task's artifacts replace those shown: a Task in the stream is never older than the events before
   * it, and after a reconnect to a trimmed log the snapshot holds the chunks the page never got (the
   * chunks after it append to it). An artifact keeps its place in the timeline. */
  _artifacts(task, done) {
    for (const artifact of task.artifacts || []) {
      const view = this.artifacts.get(artifact.artifactId);
      if (!view) {
        this._progress(artifact, false, done);
        continue;
      }
      view.add(artifact, false);
      if (done) view.done();
    }
  }

  _completed(task) {
    this.contextId = task.contextId;
    this._users(task.history);
    const turn = this._turn();
    this._artifacts(task, true);
    for (const view of this.artifacts.values()) view.done();
    if (INTERRUPTED.has(task.status.state)) turn.ended = true;
    if (TERMINAL.has(task.status.state)) this.finished = true;
    this._setState(task.status.state, task.status.timestamp, true);
    this._reply(turn, task.status);
  }

  /** The status message that ends a turn: the agent's question, its whole reply, or why it failed. */
  _reply(turn, status) {
    const message = status.message;
    if (!message || this.shownMessages.has(message.messageId)) return;
    this.shownMessages.add(message.messageId);
    const text = textOf(message.parts);
    // An agent that streams its reply as an artifact may also close the turn with the whole text.
    const repeated = turn.artifactViews.some((view) => view.textContent === text);
    if (text && repeated && !otherParts(message.parts).length) return;
    const failed = status.state === "failed" || status.state === "rejected";
    turn.append(
      element(
        "div",
        { class: failed ? "message agent failed" : "message agent", "data-testid": "agent-message" },
        element("span", { class: "who" }, "Agent"),
        text,
        ...otherParts(message.parts),
      ),
    );
  }

  _failed(error) {
    const code = error.code !== undefined ? ` (error ${error.code})` : "";
    this.error = error;
    this.finished = true;
    for (const view of this.artifacts.values()) view.done();
    this.elements.error.textContent = `${error.message || "The task failed"}${code}`;
    this.elements.error.hidden = false;
    this.onState(this.state);
  }

  _setState(state, timestamp, force = false) {
    if (!state) return;
    if (state !== this.state) {
      this.state = state;
      this.elements.state.textContent = state;
      this.elements.state.dataset.state = state;
      this._turn().append(
        element(
          "div",
          { class: "activity", "data-testid": "state-change", "data-state": state },
          timeElement(timestamp),
          element("span", {}, `State: ${state}`),
        ),
      );
    } else if (!force) {
      return;
    }
    if (TERMINAL.has(state) || INTERRUPTED.has(state)) {
      for (const view of this.artifacts.values()) view.done();
    }
    this.onState(state);
  }
}
