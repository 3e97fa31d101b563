// The credential the user pasted, sent the way the gateway takes it. `GET /ui/config.json` lists the schemes
// it enforces (`auth.schemes`, the agent card's `securitySchemes`): "apiKey" in a header, "bearer" a JWT.
// With both, the pasted value says which it is: a JWT is three base64url segments joined by dots (RFC 7519
// §3, JWS compact serialization), anything else is an API key.

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

// The browser stream's query parameters: EventSource cannot set headers (see gateway/access/auth.py).
const QUERY = { apiKey: "api_key", bearer: "access_token" };

function looksLikeJwt(value) {
  return JWT.test(value);
}

export class Credential {
  /** `auth`: config.json's `auth` (`enabled`, `apiKeyHeader`, `schemes`). */
  constructor(auth = {}) {
    this.enabled = Boolean(auth.enabled);
    this.apiKeyHeader = auth.apiKeyHeader || "X-API-Key";
    const listed = auth.schemes || [];
    // A gateway from before `schemes` took API keys only.
    if (this.enabled && !listed.length) this.schemes = ["apiKey"];
    else this.schemes = listed.filter((scheme) => scheme in QUERY);
    this.value = "";
  }

  /** How the current value goes: "apiKey", "bearer", or null (nothing to send). */
  get scheme() {
    if (!this.enabled || !this.value) return null;
    const apiKey = this.schemes.includes("apiKey");
    const bearer = this.schemes.includes("bearer");
    if (apiKey && bearer) return looksLikeJwt(this.value) ? "bearer" : "apiKey";
    if (bearer) return "bearer";
    return apiKey ? "apiKey" : null;
  }

  /** The field's label: which credentials the gateway accepts. */
  get label() {
    const apiKey = this.schemes.includes("apiKey");
    const bearer = this.schemes.includes("bearer");
    if (apiKey && bearer) return "API key or JWT";
    return bearer ? "JWT (Bearer token)" : "API key";
  }

  /** How the field's value is sent, when that depends on what it is. */
  get hint() {
    const both = this.schemes.includes("apiKey") && this.schemes.includes("bearer");
    return both ? "A JWT is sent as a Bearer token, anything else as the API key." : "";
  }

  /** What the gateway asks for, for the page's header line. */
  get description() {
    const ways = [];
    if (this.schemes.includes("apiKey")) ways.push(`an API key (${this.apiKeyHeader})`);
    if (this.schemes.includes("bearer")) ways.push("a JWT (Authorization: Bearer)");
    return ways.length ? `requests need ${ways.join(" or ")}` : "requests need a credential";
  }

  /** The request headers carrying it. */
  headers() {
    switch (this.scheme) {
      case "apiKey":
        return { [this.apiKeyHeader]: this.value };
      case "bearer":
        return { authorization: `Bearer ${this.value}` };
      default:
        return {};
    }
  }

  /** Puts it in the query string of `url` (a URL), for EventSource. */
  addTo(url) {
    const scheme = this.scheme;
    if (scheme) url.searchParams.set(QUERY[scheme], this.value);
    return url;
  }
}
