// The task on screen: its panel, its event stream, what to do when the stream gives up, its cancel; or,
// for an address that names no task, the "no such task" view in its place.
//
// A task just sent is drawn from the send's answer, then from its event log. A task opened by its address
// (`#task=<id>`) is drawn first from `tasks/get`, in the order of its history (whether or not its event log
// still exists), then from its log, which, while there is one, draws it again in full and streams on.

import { RpcError, describe } from "./rpc.js";
import { TaskStream } from "./stream.js";
import { INTERRUPTED, TERMINAL, TaskView } from "./task-view.js";

// Consecutive times EventSource may give up on one task before the page stops and says so.
const MAX_GIVE_UPS = 8;
// A2A's "Task not found".
const TASK_NOT_FOUND = -32001;
const STREAM_LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Connection lost, reconnecting…",
};

export class TaskPanel {
  /**
   * `ui`: the page's elements (index.html). `rpc`: the RpcClient; `agents`: the Agents; `credential`: the
   * Credential (for the stream's URL); `tasks`: the TaskList; `recent`: the RecentTasks. `error(text)`
   * shows (or with null, clears) the composer's error; `onChange()`: the shown task or its state changed.
   */
  constructor(ui, { rpc, agents, credential, tasks, recent, error, onChange }) {
    this.ui = ui;
    this.rpc = rpc;
    this.agents = agents;
    this.credential = credential;
    this.tasks = tasks;
    this.recent = recent;
    this.error = error;
    this.onChange = onChange;
    // The task on screen: {taskId, agent, view, stream, giveUps}.
    this.session = null;
  }

  /** Whether the "no such task" view is shown. */
  get notFound() {
    return !this.ui.notFound.hidden;
  }

  /** Shows task `taskId`, just sent (`task`: the send's answer), and streams its events. */
  open(taskId, agent, task) {
    const session = this._session(taskId, agent);
    session.view.applyTask(task);
    this._stream(session);
  }

  /** Shows task `taskId` as `tasks/get` has it, then streams its events. */
  async load(taskId, agent) {
    const session = this._session(taskId, agent);
    this.ui.task.hidden = true;
    this.error(null);
    this.onChange();
    let task = null;
    try {
      task = await this._call(session, "tasks/get");
    } catch (err) {
      if (session !== this.session) return;
      if (err instanceof RpcError && err.code === TASK_NOT_FOUND) {
        this._notFound(session, err);
        return;
      }
      // The stream may still show it, or says why not.
      this.error(`The task could not be read: ${describe(err)}`);
    }
    if (session !== this.session) return;
    if (task) session.view.showRecord(task);
    this._stream(session);
  }

  /** Back to no task on screen; the shown one keeps running on the gateway. */
  leave() {
    this.session?.stream.close();
    this.session = null;
    this.ui.task.hidden = true;
    this.ui.notFound.hidden = true;
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
    this.tasks.setCurrent(null);
    this.onChange();
  }

  async cancel() {
    const session = this.session;
    if (!session) return;
    this.ui.cancel.disabled = true;
    try {
      const task = await this._call(session, "tasks/cancel");
      if (session === this.session) session.view.applyResult(task);
    } catch (err) {
      if (session === this.session) this.error(describe(err));
    } finally {
      this.onChange();
    }
  }

  /** JSON-RPC `method` on the session's task, at its agent's endpoint. */
  _call(session, method) {
    return this.rpc.call(this.agents.endpoint(session.agent), method, { id: session.taskId });
  }

  /** A new session for task `taskId` (its panel not shown yet), in place of the last one. */
  _session(taskId, agent) {
    const { ui } = this;
    this.session?.stream.close();
    const session = { taskId, agent, giveUps: 0 };
    session.view = new TaskView(
      {
        timeline: ui.timeline,
        state: ui.state,
        error: ui.taskError,
        artifacts: ui.artifacts,
        artifactList: ui.artifactList,
      },
      { taskId, onState: (state) => this._stateChanged(session, state) },
    );
    session.stream = new TaskStream(() => this._eventsUrl(taskId), {
      onEvent: (event) => this._event(session, event),
      onStatus: (status, drops) => this._streamStatus(session, status, drops),
      onGiveUp: () => this._gaveUp(session),
    });
    this.session = session;
    ui.notFound.hidden = true;
    this.tasks.setCurrent(taskId);
    return session;
  }

  /** Shows the session's panel and streams its events from the beginning of its log. */
  _stream(session) {
    const { ui } = this;
    ui.task.hidden = false;
    ui.taskId.textContent = session.taskId;
    const href = this.agents.temporalHref(session.taskId);
    ui.temporal.hidden = !href;
    if (href) ui.temporal.href = href;
    else ui.temporal.removeAttribute("href");
    session.stream.open(null);
    window.history.replaceState(null, "", `#task=${encodeURIComponent(session.taskId)}`);
    this.onChange();
  }

  /** The gateway has no such task (for this caller): one message, no task panel. */
  _notFound(session, err) {
    session.stream.close();
    this.session = null;
    this.ui.task.hidden = true;
    // The gateway's message names the id again: the code says it all.
    this.ui.notFoundText.textContent =
      `The gateway has no task “${session.taskId}” for you: it answered Task not found ` +
      `(JSON-RPC error ${err.code}). It may have expired, or the address may be mistyped.`;
    this.ui.notFound.hidden = false;
    this.tasks.setCurrent(null);
    this.onChange();
  }

  _eventsUrl(taskId) {
    const url = new URL(`/tasks/${encodeURIComponent(taskId)}/events`, window.location.href);
    // EventSource cannot set headers: the gateway takes the credential from the query string on this route.
    return this.credential.addTo(url).toString();
  }

  _event(session, event) {
    if (session !== this.session) return;
    session.giveUps = 0;
    session.view.apply(event);
    if (session.view.finished) session.stream.close();
  }

  _stateChanged(session, state) {
    this.recent.update(session.taskId, state);
    // The turn or the task (and its stream) ended: the list asks the gateway again, unless it already
    // shows the task so (a finished task opened from the list replays to the state listed).
    if ((TERMINAL.has(state) || INTERRUPTED.has(state)) && !this.tasks.shows(session.taskId, state)) {
      this.tasks.refreshSoon();
    }
    this.tasks.updateState(session.taskId, state);
    if (session === this.session) this.onChange();
  }

  _streamStatus(session, status, drops) {
    if (session !== this.session) return;
    const { stream } = this.ui;
    stream.dataset.status = status;
    stream.dataset.drops = String(drops);
    const ended = session.view.finished ? "Stream ended" : "Not streaming";
    stream.textContent = STREAM_LABELS[status] || ended;
  }

  /** EventSource stopped on its own (HTTP 204 or an error status): ask the gateway about the task. */
  async _gaveUp(session) {
    if (session !== this.session) return;
    if (session.view.finished) {
      // Drawn to its end already (from tasks/get): the log had nothing more.
      session.stream.close();
      return;
    }
    session.giveUps += 1;
    let task;
    try {
      task = await this._call(session, "tasks/get");
    } catch (err) {
      if (session !== this.session) return;
      // A JSON-RPC answer (task not found, not allowed…) will not change by retrying; a gateway that
      // cannot be reached or answers -32603 may come back.
      if (err instanceof RpcError && err.code !== null && err.code !== -32603) {
        session.stream.close();
        this.error(`The task's events cannot be read: ${describe(err)}`);
        return;
      }
      this._retry(session, err);
      return;
    }
    if (session !== this.session) return;
    if (TERMINAL.has(task.status.state)) {
      // The log has nothing more for this page: the task as the gateway has it is the end.
      session.view.applyResult(task, { settle: true });
      session.stream.close();
      return;
    }
    this._retry(session, null);
  }

  _retry(session, err) {
    if (session.giveUps > MAX_GIVE_UPS) {
      session.stream.close();
      const why = err ? `: ${describe(err)}` : "";
      this.error(`The task's event stream is unavailable${why}. Reopen the task from the list to try again.`);
      return;
    }
    session.stream.retry();
  }
}
