// One task on the page, drawn from its events (ARCHITECTURE.md, "Two views of one event log") or, where
// its event log does not reach back, from the Task itself (`tasks/get`, a snapshot in the stream).
//
// The timeline holds one entry per turn: the user's message, then what happened in order (state changes,
// tool calls as they happen, the artifacts streamed, the agent's closing message). Artifacts are keyed
// by artifactId: `append:true` adds a chunk's parts, `append:false` starts the artifact again (a retried
// agent attempt restarts its output), so the text shown is exactly what the log says, never doubled.
//
// A Task drawn as a whole (its record) follows its history in order: each user message opens a turn, each
// agent message (the agent's questions, its steps) goes in the turn it answers, and the task's status ends
// the last turn (its state, then its message). A Task does not say which turn made which artifact: with
// one turn they are that turn's; with several they are listed together under the conversation.

import { element, timeElement } from "./dom.js";
import { agentMessage, dataActivity, otherParts, stateLine, textOf } from "./parts.js";
import { ArtifactView, Turn } from "./timeline.js";

export const TERMINAL = new Set(["completed", "canceled", "failed", "rejected"]);
// A2A 0.2.5: the task waits for the client; the same task takes the next message.
export const INTERRUPTED = new Set(["input-required", "auth-required"]);

export class TaskView {
  /**
   * `elements`: `{timeline, state, error, artifacts, artifactList}` of the task panel (`artifacts`: the
   * section that lists a record's artifacts when its turns cannot say whose they are). `onState(state)`
   * is called when the state or the finished flag changes.
   */
  constructor(elements, { taskId, onState }) {
    this.elements = elements;
    this.taskId = taskId;
    this.onState = onState;
    this._reset();
  }

  _reset() {
    this.contextId = null;
    this.state = null;
    this.error = null;
    // True once the event that ends the stream (task.completed in a terminal state, task.error) is shown.
    this.finished = false;
    this.turns = [];
    this.artifacts = new Map();
    this.shownMessages = new Set();
    // Whether the event log drew the timeline (else nothing has, or the Task's record did).
    this.fromLog = false;
    const { timeline, state, error, artifacts, artifactList } = this.elements;
    timeline.replaceChildren();
    state.textContent = "";
    state.dataset.state = "";
    error.hidden = true;
    error.textContent = "";
    artifacts.hidden = true;
    artifactList.replaceChildren();
  }

  get terminal() {
    return TERMINAL.has(this.state) || this.error !== null;
  }

  get interrupted() {
    return INTERRUPTED.has(this.state) && this.error === null;
  }

  /** How many of the task's user messages are shown: the next one is turn `userCount + 1`. */
  get userCount() {
    return this.turns.filter((turn) => turn.user).length;
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
    this.fromLog = true;
  }

  /** The Task as `tasks/get` returned it, drawn from its history in order: what the page shows of a task
   * before (or instead of) its event log. */
  showRecord(task) {
    this._reset();
    this._record(task);
  }

  /** A whole Task at its start: the send's result, `task.created`, or a snapshot standing in for the
   * beginning of a trimmed log. On a timeline the log has drawn, it updates what is shown; otherwise it
   * starts the timeline afresh (the log, when there is one, replaces a record drawn before it). */
  applyTask(task) {
    if (!this.fromLog) {
      this.showRecord(task);
      this.fromLog = true;
      return;
    }
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

  /** Draws `task` from its history, on an empty timeline: each user message opens a turn (the one before
   * it has ended), the status ends the last one. */
  _record(task) {
    const status = task.status || {};
    const closing = status.message?.messageId;
    for (const message of task.history || []) {
      if (message.role === "user") {
        const last = this.turns.at(-1);
        if (last) last.ended = true;
        this._newTurn().setUser(message);
      } else if (message.messageId !== closing) {
        this._agentMessage(message);
      }
    }
    this.contextId = task.contextId;
    // Several turns: whose each artifact is, the Task does not say.
    if (this.turns.length > 1) this._listArtifacts(task.artifacts || []);
    if (TERMINAL.has(status.state) || INTERRUPTED.has(status.state)) {
      this._completed(task);
      return;
    }
    // Still running: its artifacts may grow, and its status message is a step of the turn.
    this._artifacts(task, false);
    this._status(status);
  }

  /** The record's artifacts, listed under the conversation (`_artifacts` fills them). */
  _listArtifacts(artifacts) {
    for (const artifact of artifacts) {
      const view = new ArtifactView(artifact);
      this.artifacts.set(view.id, view);
      this.elements.artifactList.append(view.root);
    }
    this.elements.artifacts.hidden = !artifacts.length;
  }

  /** An agent message of the history (not the status's): its data parts as activities (tool calls), the
   * rest as a message. */
  _agentMessage(message) {
    if (!this._firstShowing(message)) return;
    const turn = this._turn();
    const parts = message.parts || [];
    const data = parts.filter((part) => part.kind === "data");
    const rest = parts.filter((part) => part.kind !== "data");
    for (const part of data) turn.append(dataActivity(part.data || {}, null));
    if (rest.length || !data.length) turn.append(agentMessage({ ...message, parts: rest }));
  }

  /** Whether `message` is there and not shown yet; if so, it counts as shown from now on. */
  _firstShowing(message) {
    if (!message || this.shownMessages.has(message.messageId)) return false;
    this.shownMessages.add(message.messageId);
    return true;
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

  /** The i-th user message of the history starts the i-th turn (unless a turn shows it already). */
  _users(history) {
    const shown = new Set(this.turns.map((turn) => turn.user?.messageId).filter(Boolean));
    const users = (history || []).filter((message) => message.role === "user");
    users.forEach((message, index) => {
      if (shown.has(message.messageId)) return;
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
    if (!this._firstShowing(message)) return;
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
    if (!this._firstShowing(message)) return;
    const text = textOf(message.parts);
    // An agent that streams its reply as an artifact may also close the turn with the whole text.
    const repeated = turn.artifactViews.some((view) => view.textContent === text);
    if (text && repeated && !otherParts(message.parts).length) return;
    const failed = status.state === "failed" || status.state === "rejected";
    turn.append(agentMessage(message, { failed }));
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
      this._turn().append(stateLine(state, timestamp));
    } else if (!force) {
      return;
    }
    if (TERMINAL.has(state) || INTERRUPTED.has(state)) {
      for (const view of this.artifacts.values()) view.done();
    }
    this.onState(state);
  }
}
