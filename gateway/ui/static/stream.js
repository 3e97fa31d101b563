// One task's browser event stream (`GET /tasks/{id}/events`) over EventSource.
//
// Every event carries `id:` = its entry id in the task's Redis log. When the connection drops, EventSource
// reconnects by itself with `Last-Event-ID` and the gateway resumes right after it, so rendering strictly
// from events never shows a piece twice. EventSource gives up (readyState CLOSED) only when the gateway
// answers something other than a stream: 204 (the task is over and nothing is left), or an error status
// (503 while busy, 401, 404). Then the owner decides, and `retry()` reconnects from the last id seen,
// passed as `lastEventId` in the query string since a new EventSource cannot set the header.

/** Stream entry ids are `<ms>-<seq>`: compared as numbers, part by part. */
export function compareEventIds(a, b) {
  const [msA, seqA] = a.split("-").map(BigInt);
  const [msB, seqB] = b.split("-").map(BigInt);
  if (msA !== msB) return msA < msB ? -1 : 1;
  if ((seqA ?? 0n) !== (seqB ?? 0n)) return (seqA ?? 0n) < (seqB ?? 0n) ? -1 : 1;
  return 0;
}

const VALID_ID = /^\d{1,20}-\d{1,20}$/;

export class TaskStream {
  /**
   * `url()`: the events URL (with the credential in the query string when there is one), asked at each
   * connection so that a credential typed since the task was opened is the one sent (EventSource's own
   * reconnections reuse their URL: one the gateway refuses gives up, and `retry()` asks again).
   * `onEvent(event, id)` for each event, in log order and at most once per id; `onStatus(status, drops)`
   * with status "connecting" | "live" | "reconnecting" | "closed"; `onGiveUp()` when EventSource stopped
   * on its own (call `retry()` or `close()`).
   */
  constructor(url, { onEvent, onStatus, onGiveUp }) {
    this.url = url;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.onGiveUp = onGiveUp;
    this.lastEventId = null;
    this.drops = 0;
    this.status = "closed";
    this._source = null;
    this._timer = null;
    this._retries = 0;
    this._closed = true;
  }

  get active() {
    return !this._closed;
  }

  /** Starts reading: from the beginning of the log, or after `lastEventId`. */
  open(lastEventId = this.lastEventId) {
    this.lastEventId = lastEventId;
    this._closed = false;
    this._connect();
  }

  /** Reconnects after the last event seen, with a growing pause (1 s, 2 s, 4 s … 15 s). */
  retry() {
    if (this._closed) return;
    const delay = Math.min(1000 * 2 ** this._retries, 15000);
    this._retries += 1;
    this._setStatus("reconnecting");
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._connect(), delay);
  }

  close() {
    this._closed = true;
    clearTimeout(this._timer);
    this._timer = null;
    if (this._source) this._source.close();
    this._source = null;
    this._setStatus("closed");
  }

  _connect() {
    if (this._closed) return;
    if (this._source) this._source.close();
    const url = new URL(this.url(), window.location.href);
    if (this.lastEventId) url.searchParams.set("lastEventId", this.lastEventId);
    const source = new EventSource(url);
    this._source = source;
    this._setStatus(this.drops || this._retries ? "reconnecting" : "connecting");
    source.onopen = () => {
      if (source !== this._source) return;
      this._retries = 0;
      this._setStatus("live");
    };
    source.onmessage = (message) => this._message(source, message);
    source.onerror = () => this._error(source);
  }

  _message(source, message) {
    if (source !== this._source || this._closed) return;
    const id = message.lastEventId;
    // The gateway never repeats an id; this guard keeps the page right even if a proxy replays a stream.
    if (VALID_ID.test(id) && this.lastEventId && VALID_ID.test(this.lastEventId)) {
      if (compareEventIds(id, this.lastEventId) <= 0) return;
    }
    if (id) this.lastEventId = id;
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    this.onEvent(event, id);
  }

  _error(source) {
    if (source !== this._source || this._closed) return;
    if (source.readyState === EventSource.CONNECTING) {
      // The connection dropped; EventSource is already reconnecting with Last-Event-ID.
      this.drops += 1;
      this._setStatus("reconnecting");
      return;
    }
    source.close();
    this._source = null;
    this.onGiveUp();
  }

  _setStatus(status) {
    this.status = status;
    this.onStatus(status, this.drops);
  }
}
