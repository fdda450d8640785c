// Starts GraphiQL on this page: every request goes to this service's POST /graphql, with the
// headers of GraphiQL's Headers tab (where a token from `passport token demo` goes).
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("explorer-config").textContent);

  function fetcher(params, options) {
    var headers = { "Content-Type": "application/json", Accept: "application/json" };
    var extra = (options && options.headers) || {};
    Object.keys(extra).forEach(function (name) {
      headers[name] = extra[name];
    });
    return fetch(config.url, {
      method: "POST",
      headers: headers,
      body: JSON.stringify(params),
      credentials: "omit",
    }).then(function (response) {
      return response.json();
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: config.query,
      defaultHeaders: config.headers,
      defaultEditorToolsVisibility: "headers",
    })
  );
})();
