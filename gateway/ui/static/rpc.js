// JSON-RPC 2.0 over HTTP POST to an agent's endpoint (A2A 0.2.5 §6, §7).

/** A failed call: a JSON-RPC error from the gateway (`code` set) or no usable answer at all (`code` null). */
export class RpcError extends Error {
  constructor(message, code = null, data = undefined) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.data = data;
  }
}

/** A random UUID: `crypto.randomUUID` exists only in secure contexts, and the console may be served over
 * plain http from another host. */
export function newId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Calls one method of one agent endpoint, with a deadline; `credential.headers()` (credential.js), read
 * at each call, authenticates it. `headers` adds to the request's (`A2A-Version` for a 1.0 method). */
export class RpcClient {
  constructor({ credential = null, timeoutMs = 30000 } = {}) {
    this.credential = credential;
    this.timeoutMs = timeoutMs;
  }

  async call(endpoint, method, params, { headers: extra = {} } = {}) {
    const headers = {
      "content-type": "application/json",
      accept: "application/json",
      ...extra,
      ...this.credential?.headers(),
    };
    const body = JSON.stringify({ jsonrpc: "2.0", id: newId(), method, params });
    let response;
    try {
      response = await fetch(endpoint, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const why = err.name === "TimeoutError" ? `no answer within ${this.timeoutMs / 1000} s` : err.message;
      throw new RpcError(`${method}: the gateway could not be reached (${why}).`);
    }
    let payload;
    try {
      payload = await response.json();
    } catch {
      throw new RpcError(`${method}: HTTP ${response.status} from ${endpoint} is not a JSON-RPC response.`);
    }
    if (payload && payload.error) {
      const { code, message, data } = payload.error;
      throw new RpcError(message || `${method} failed`, code ?? null, data);
    }
    if (!response.ok || !payload || !("result" in payload)) {
      throw new RpcError(`${method}: HTTP ${response.status} from ${endpoint} without a result.`);
    }
    return payload.result;
  }
}

/** An error as the page says it: a JSON-RPC error with its code. */
export function describe(err) {
  if (err instanceof RpcError && err.code !== null) return `${err.message} (JSON-RPC error ${err.code})`;
  return err instanceof Error ? err.message : String(err);
}
