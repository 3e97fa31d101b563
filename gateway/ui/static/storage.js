// What the console keeps in this browser (localStorage): the credential, the agent, the message options.
// With storage disabled (private browsing, a policy), a value lasts as long as the page.

export function stored(key) {
  try {
    return localStorage.getItem(key) || "";
  } catch {
    return "";
  }
}

/** Stores `value` under `key` (removes the key when `value` is empty); false when the browser refused. */
export function store(key, value) {
  try {
    if (value) localStorage.setItem(key, value);
    else localStorage.removeItem(key);
    return true;
  } catch {
    return false;
  }
}
