"""Self-hosted GraphiQL page.

The GraphiQL, React and ReactDOM browser bundles come from npm: ``make assets`` runs
``npm ci --prefix web`` (versions pinned in ``web/package.json`` and ``web/package-lock.json``)
into the git-ignored ``web/node_modules``. :func:`find_assets` looks there (or in
``SCV_GRAPHIQL_ASSETS``); :func:`assets_route` serves exactly the four files of :data:`ASSETS`
at ``STATIC_URL_PREFIX`` and nothing else of that tree, and :func:`graphiql_html` returns the
page, which then references nothing but those files, so the IDE works without internet access.

When the files are not installed (no npm on the machine) the page loads the same pinned files
from the unpkg CDN, each checked by its Subresource Integrity hash, and :func:`find_assets`
logs one warning saying so. GraphiQL 4 and later ship no UMD build, hence 3.x.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = [
    "ASSETS",
    "CDN_BASE",
    "DEFAULT_ASSETS_DIR",
    "DEFAULT_QUERY",
    "PINNED",
    "STATIC_URL_PREFIX",
    "Asset",
    "assets_route",
    "find_assets",
    "graphiql_html",
]

log = logging.getLogger("scv.gateway")

# The repository's web/node_modules (the project is installed editable).
DEFAULT_ASSETS_DIR: Final[Path] = Path(__file__).resolve().parent.parent / "web" / "node_modules"
STATIC_URL_PREFIX: Final = "/graphiql-static"
CDN_BASE: Final = "https://unpkg.com"

# Must equal the dependencies of web/package.json (a test checks it).
PINNED: Final = {"graphiql": "3.9.0", "react": "18.3.1", "react-dom": "18.3.1"}


@dataclass(frozen=True)
class Asset:
    """One file of an npm package that the page loads."""

    package: str
    file: str  # path inside the package
    media_type: str
    integrity: str  # Subresource Integrity of the pinned version's file, checked on the CDN

    @property
    def path(self) -> str:
        """Its path under the assets directory and under STATIC_URL_PREFIX."""
        return f"{self.package}/{self.file}"

    @property
    def cdn_url(self) -> str:
        return f"{CDN_BASE}/{self.package}@{PINNED[self.package]}/{self.file}"

    @property
    def is_stylesheet(self) -> bool:
        return self.media_type == "text/css"


# Everything the page loads, in load order: the GraphiQL 3 UMD build needs the React and
# ReactDOM globals, so React comes first.
ASSETS: Final = (
    Asset(
        "graphiql",
        "graphiql.min.css",
        "text/css",
        "sha384-QMux00XgRtwRLSYIY3kw2rj1ovk5AuuliAchk+HSQbqdbGFnz9GYuqIlOqxhwCE2",
    ),
    Asset(
        "react",
        "umd/react.production.min.js",
        "text/javascript",
        "sha384-DGyLxAyjq0f9SPpVevD6IgztCFlnMF6oW/XQGmfe+IsZ8TqEiDrcHkMLKI6fiB/Z",
    ),
    Asset(
        "react-dom",
        "umd/react-dom.production.min.js",
        "text/javascript",
        "sha384-gTGxhz21lVGYNMcdJOyq01Edg0jhn/c22nsx0kyqP0TxaV5WVdsSH1fSDUf5YJj1",
    ),
    Asset(
        "graphiql",
        "graphiql.min.js",
        "text/javascript",
        "sha384-8NGfVj4CVlqHajlZj+bPJT4thxPMHMJYn7DWK2CvtopLd02E7qsPHazniBYvVjOO",
    ),
)


def find_assets(directory: Path | None = None) -> Path | None:
    """The directory holding every file of ASSETS (default: web/node_modules), else None.

    None means the page loads them from the CDN; that is logged once, here, as a warning.
    """
    where = (directory or DEFAULT_ASSETS_DIR).resolve()
    missing = [asset.path for asset in ASSETS if not (where / asset.path).is_file()]
    if not missing:
        return where
    log.warning(
        "GraphiQL assets are not installed (%s not found in %s): GraphiQL will load them from "
        "%s and needs internet access; run `make assets` (needs npm) to serve them from the gateway",
        missing[0],
        where,
        CDN_BASE,
    )
    return None


def assets_route(directory: Path | None) -> Route:
    """Serves the files of ASSETS found in ``directory`` at STATIC_URL_PREFIX; any other path,
    or any path at all when ``directory`` is None, is a 404."""
    files = {} if directory is None else {a.path: (directory / a.path, a) for a in ASSETS}

    async def asset_file(request: Request) -> Response:
        found = files.get(request.path_params["path"])
        if found is None or not found[0].is_file():
            return PlainTextResponse("Not Found", status_code=404)
        path, asset = found
        return FileResponse(path, media_type=asset.media_type)

    return Route(
        f"{STATIC_URL_PREFIX}/{{path:path}}",
        asset_file,
        methods=["GET", "HEAD"],
        name="graphiql-assets",
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

_BOOTSTRAP_JS: Final = r"""
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("graphiql-config").textContent);

  // The operations of a GraphQL document, in order: {name (null: anonymous), start, end}.
  // A small lexer: comments, strings and block strings are skipped, brackets counted; an
  // operation starts at depth 0 with query/mutation/subscription or a bare "{".
  var BLOCK_QUOTE = "\x22\x22\x22";  // three double quotes: a block string's delimiter
  function operationsOf(text) {
    var ops = [], depth = 0, i = 0, n = text.length, pending = null, current = null;
    while (i < n) {
      var c = text.charAt(i);
      if (c === "#") {
        while (i < n && text.charAt(i) !== "\n" && text.charAt(i) !== "\r") i++;
      } else if (text.substr(i, 3) === BLOCK_QUOTE) {
        i += 3;
        while (i < n && text.substr(i, 3) !== BLOCK_QUOTE) {
          i += text.substr(i, 4) === "\\" + BLOCK_QUOTE ? 4 : 1;
        }
        i += 3;
      } else if (c === '"') {
        i++;
        while (i < n && text.charAt(i) !== '"' && text.charAt(i) !== "\n") {
          i += text.charAt(i) === "\\" ? 2 : 1;
        }
        i++;
      } else if (/[_A-Za-z]/.test(c)) {
        var start = i;
        while (i < n && /[_0-9A-Za-z]/.test(text.charAt(i))) i++;
        var word = text.slice(start, i);
        if (depth === 0 && pending === "name") {
          current.name = word;
          pending = "operation";
        } else if (depth === 0 && pending === null) {
          if (word === "query" || word === "mutation" || word === "subscription") {
            current = { name: null, start: start, end: n };
            ops.push(current);
            pending = "name";
          } else if (word === "fragment") {
            current = null;
            pending = "fragment";
          }
        }
      } else {
        if (depth === 0 && pending === "name" && c !== " " && c !== "\t" && c !== "\n" &&
            c !== "\r" && c !== ",") {
          pending = "operation";  // "(", "@" or "{": an anonymous operation
        }
        if (c === "{" && depth === 0) {
          if (pending === null) {  // the query shorthand
            current = { name: null, start: i, end: n };
            ops.push(current);
          }
          pending = "body";
        }
        if (c === "{" || c === "(" || c === "[") depth++;
        if (c === "}" || c === ")" || c === "]") depth = Math.max(depth - 1, 0);
        if (c === "}" && depth === 0 && pending === "body") {
          if (current !== null) current.end = i + 1;
          pending = null;
        }
        i++;
      }
    }
    return ops;
  }

  // Where the query editor's cursor is, as an offset into ``query`` (null when unknown).
  function cursorOffset(query) {
    var el = document.querySelector("section[aria-label='Query Editor'] .CodeMirror");
    var cm = el && el.CodeMirror;
    if (!cm || cm.getValue() !== query) return null;
    return cm.indexFromPos(cm.getCursor());
  }

  // The operation to run: GraphiQL updates its operationName 100 ms after an edit, so a run
  // right after a paste would send the previous document's name. The name is taken from the
  // query text itself: the one GraphiQL chose when the document has it, else its only
  // operation's (none when anonymous), else the operation under the cursor.
  function operationNameFor(query, given) {
    var ops = operationsOf(query || "");
    var names = ops.map(function (op) { return op.name; });
    if (given && names.indexOf(given) >= 0) return given;
    if (ops.length === 1) return ops[0].name || undefined;
    var at = cursorOffset(query);
    var here = ops.filter(function (op) { return at !== null && op.start <= at && at <= op.end; });
    return here.length === 1 && here[0].name ? here[0].name : undefined;
  }
  window.scvOperationNameFor = operationNameFor;  // for the browser test

  // Plain JSON-over-POST fetcher. GraphiQL passes the parsed contents of its Headers
  // editor as opts.headers; they are sent as they are, on top of the JSON content type.
  function fetcher(graphQLParams, opts) {
    var headers = Object.assign(
      { "Content-Type": "application/json", Accept: "application/json" },
      (opts && opts.headers) || {}
    );
    var params = Object.assign({}, graphQLParams, {
      operationName: operationNameFor(graphQLParams.query, graphQLParams.operationName)
    });
    return fetch(config.endpoint, {
      method: "POST",
      headers: headers,
      body: JSON.stringify(params),
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


def _asset_tag(asset: Asset, *, local_assets: bool) -> str:
    if local_assets:
        src = f'"{STATIC_URL_PREFIX}/{asset.path}"'
    else:  # the CDN's file must be exactly the pinned one
        src = f'"{asset.cdn_url}" integrity="{asset.integrity}" crossorigin="anonymous"'
    if asset.is_stylesheet:
        return f'    <link rel="stylesheet" href={src} />'
    return f"    <script src={src}></script>"


def graphiql_html(
    *, endpoint: str = "/graphql", headers: dict[str, str] | None = None, local_assets: bool
) -> str:
    """Return the GraphiQL page for ``endpoint``.

    With ``local_assets`` it loads ASSETS from STATIC_URL_PREFIX (see :func:`assets_route`),
    else from the CDN. With ``headers`` (e.g. ``{"Authorization": "Bearer eyJ..."}``) the page
    opens with them in GraphiQL's Headers editor, shown open; every request sends whatever
    that editor holds when it is run. Headers are never written to the browser's localStorage.
    """
    config = {
        "endpoint": endpoint,
        "headers": None if headers is None else json.dumps(headers, indent=2),
        "defaultQuery": DEFAULT_QUERY,
    }
    stylesheets = "\n".join(
        _asset_tag(a, local_assets=local_assets) for a in ASSETS if a.is_stylesheet
    )
    scripts = "\n".join(
        _asset_tag(a, local_assets=local_assets) for a in ASSETS if not a.is_stylesheet
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
