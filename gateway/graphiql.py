"""Self-hosted GraphiQL page.

The GraphiQL, React and ReactDOM browser bundles are vendored in ``gateway/static/graphiql``
(see the README there) so the IDE works without internet access. The app mounts
``StaticFiles(directory=STATIC_DIR)`` at ``STATIC_URL_PREFIX`` and serves the page returned
by :func:`graphiql_html`, which references nothing but those files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

__all__ = ["DEFAULT_QUERY", "STATIC_DIR", "STATIC_URL_PREFIX", "graphiql_html"]

STATIC_DIR: Final[Path] = Path(__file__).resolve().parent / "static" / "graphiql"
STATIC_URL_PREFIX: Final = "/graphiql-static"

# Files under STATIC_DIR that the page loads, in load order (React before GraphiQL).
_STYLESHEETS: Final = ("graphiql.min.css",)
_SCRIPTS: Final = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
)

DEFAULT_QUERY: Final = """\
# Single Customer View gateway.
# Ctrl-Enter (or the run button) runs the query.
query SearchContacts {
  searchContacts(query: "a") {
    edges {
      node {
        id
        firstName
        lastName
      }
    }
  }
}
"""

# Characters that must not appear literally inside an inline <script> element: "<" and ">"
# could form "</script>" or "<!--", "&" keeps the text unambiguous if it is ever parsed as
# HTML, and U+2028/U+2029 are line terminators in older JavaScript engines.
_SCRIPT_ESCAPES: Final = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}

_BOOTSTRAP_JS: Final = """\
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("graphiql-config").textContent);

  // Plain JSON-over-POST fetcher. GraphiQL passes the parsed contents of its Headers
  // editor as opts.headers; they are sent as they are, on top of the JSON content type.
  function fetcher(graphQLParams, opts) {
    var headers = Object.assign(
      { "Content-Type": "application/json", Accept: "application/json" },
      (opts && opts.headers) || {}
    );
    return fetch(config.endpoint, {
      method: "POST",
      headers: headers,
      body: JSON.stringify(graphQLParams),
      credentials: "same-origin"
    }).then(function (response) {
      return response.text().then(function (text) {
        try {
          return JSON.parse(text);
        } catch (err) {
          return { errors: [{ message: "HTTP " + response.status + ": " + text }] };
        }
      });
    });
  }

  var props = {
    fetcher: fetcher,
    defaultQuery: config.defaultQuery,
    shouldPersistHeaders: false,
    isHeadersEditorEnabled: true
  };
  if (config.headers !== null) {
    // headers: fills the editor now, over anything GraphiQL kept from an earlier visit;
    // defaultHeaders: fills it in every new tab.
    props.headers = config.headers;
    props.defaultHeaders = config.headers;
    props.defaultEditorToolsVisibility = "headers";
  }

  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, props));
})();
"""


def _script_json(value: object) -> str:
    """Serialise ``value`` as JSON that is safe to place verbatim inside a <script> element."""
    return json.dumps(value, ensure_ascii=False).translate(_SCRIPT_ESCAPES)


def graphiql_html(*, endpoint: str = "/graphql", headers: dict[str, str] | None = None) -> str:
    """Return the GraphiQL page for ``endpoint``, loading its assets from STATIC_URL_PREFIX.

    With ``headers`` (e.g. ``{"Authorization": "Bearer eyJ..."}``) the page opens with them
    in GraphiQL's Headers editor, shown open; every request sends whatever that editor holds
    when it is run. Headers are never written to the browser's localStorage.
    """
    config = {
        "endpoint": endpoint,
        "headers": None if headers is None else json.dumps(headers, indent=2),
        "defaultQuery": DEFAULT_QUERY,
    }
    stylesheets = "\n".join(
        f'    <link rel="stylesheet" href="{STATIC_URL_PREFIX}/{name}" />' for name in _STYLESHEETS
    )
    scripts = "\n".join(
        f'    <script src="{STATIC_URL_PREFIX}/{name}"></script>' for name in _SCRIPTS
    )
    return f"""\
<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="robots" content="noindex" />
    <title>SCV gateway · GraphiQL</title>
    <link rel="icon" href="data:," />
{stylesheets}
    <style>
      html, body {{ height: 100%; margin: 0; overflow: hidden; }}
      #graphiql {{ height: 100vh; }}
    </style>
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <script id="graphiql-config" type="application/json">{_script_json(config)}</script>
{scripts}
    <script>
{_BOOTSTRAP_JS}    </script>
  </body>
</html>
"""
