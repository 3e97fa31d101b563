"""The web console at `/ui/`: static HTML, CSS and JavaScript modules in `static/` (no build step), and
the configuration it reads at `/ui/config.json` (`console`). Imports `gateway.cards` and
`gateway.settings`; the page itself talks to the gateway over HTTP like any client."""
