// Mounts GraphiQL on #graphiql. The server puts its settings in data-*
// attributes so the page needs no inline script (its CSP forbids them).
(function () {
  'use strict';

  var root = document.getElementById('graphiql');
  var endpoint = root.dataset.endpoint || '/query';
  var subscriptionEndpoint = root.dataset.subscriptionEndpoint || websocketURL(endpoint);
  var defaultQuery = root.dataset.defaultQuery || '';

  // websocketURL turns the HTTP endpoint into the WebSocket URL on the same
  // host: /query on https://host becomes wss://host/query.
  function websocketURL(httpEndpoint) {
    var u = new URL(httpEndpoint, window.location.href);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.href;
  }

  // headerValue finds a header in the headers editor's object, whatever its case.
  function headerValue(headers, name) {
    if (!headers) return undefined;
    var want = name.toLowerCase();
    for (var key in headers) {
      if (Object.prototype.hasOwnProperty.call(headers, key) && key.toLowerCase() === want) {
        return headers[key];
      }
    }
    return undefined;
  }

  // operationType says which operation GraphiQL is about to run. It trusts
  // the parsed document GraphiQL hands over only when it was parsed from this
  // very text (GraphiQL re-parses after a short delay while typing).
  function operationType(params, opts) {
    var doc = opts && opts.documentAST;
    if (doc && doc.definitions && doc.loc && doc.loc.source && doc.loc.source.body === params.query) {
      var ops = doc.definitions.filter(function (d) { return d.kind === 'OperationDefinition'; });
      var op = params.operationName
        ? ops.find(function (d) { return d.name && d.name.value === params.operationName; })
        : ops[0];
      return op ? op.operation : 'query';
    }
    return scanOperationType(params.query || '', params.operationName);
  }

  // scanOperationType finds the operation's keyword in the text itself:
  // top-level words outside comments and strings, "{" alone meaning a query.
  function scanOperationType(text, operationName) {
    var ops = []; // {type, name, opened}
    var depth = 0;
    var i = 0;
    while (i < text.length) {
      var c = text[i];
      if (c === '#') {
        while (i < text.length && text[i] !== '\n') i++;
      } else if (c === '"') {
        var block = text.substr(i, 3) === '"""';
        var end = block ? text.indexOf('"""', i + 3) : i + 1;
        if (!block) {
          while (end < text.length && text[end] !== '"' && text[end] !== '\n') end += text[end] === '\\' ? 2 : 1;
        }
        i = end < 0 ? text.length : end + (block ? 3 : 1);
      } else if (c === '{' || c === '(' || c === '[') {
        if (depth === 0 && c === '{') {
          if (ops.length === 0 || ops[ops.length - 1].opened) ops.push({ type: 'query', name: null });
          ops[ops.length - 1].opened = true;
        }
        depth++;
        i++;
      } else if (c === '}' || c === ')' || c === ']') {
        depth--;
        i++;
      } else if (/[A-Za-z_]/.test(c)) {
        var word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))[0];
        if (depth === 0) {
          var last = ops[ops.length - 1];
          if (word === 'query' || word === 'mutation' || word === 'subscription' || word === 'fragment') {
            ops.push({ type: word, name: null });
          } else if (last && !last.opened && last.name === null) {
            last.name = word;
          }
        }
        i += word.length;
      } else {
        i++;
      }
    }
    ops = ops.filter(function (o) { return o.type !== 'fragment'; });
    var op = operationName ? ops.find(function (o) { return o.name === operationName; }) : ops[0];
    return op ? op.type : 'query';
  }

  function fetchHTTP(params, opts) {
    var headers = {
      'Content-Type': 'application/json',
      Accept: 'application/graphql-response+json, application/json'
    };
    var extra = (opts && opts.headers) || {};
    for (var key in extra) {
      if (Object.prototype.hasOwnProperty.call(extra, key)) headers[key] = extra[key];
    }
    return fetch(endpoint, {
      method: 'POST',
      headers: headers,
      body: JSON.stringify(params),
      credentials: 'same-origin'
    }).then(function (res) {
      return res.text().then(function (text) {
        try {
          return JSON.parse(text);
        } catch (e) {
          // Not GraphQL (a proxy's error page, say): show what came back.
          return { errors: [{ message: 'HTTP ' + res.status + ' ' + res.statusText + ': ' + text.slice(0, 2000) }] };
        }
      });
    });
  }

  // One WebSocket client at a time, rebuilt when the Authorization header
  // changes, because graphql-transport-ws authenticates once, at connection_init.
  var ws = { client: null, authorization: undefined };

  function websocketClient(authorization) {
    if (ws.client && ws.authorization === authorization) return ws.client;
    if (ws.client) ws.client.dispose();
    ws.authorization = authorization;
    ws.client = graphqlWs.createClient({
      url: subscriptionEndpoint,
      lazy: true,
      retryAttempts: 3,
      connectionParams: authorization === undefined ? {} : { Authorization: authorization }
    });
    return ws.client;
  }

  function fetchSubscription(params, opts) {
    var auth = headerValue(opts && opts.headers, 'Authorization');
    return websocketClient(auth === undefined ? undefined : String(auth)).iterate({
      query: params.query,
      variables: params.variables,
      operationName: params.operationName,
      extensions: params.extensions
    });
  }

  function fetcher(params, opts) {
    if (operationType(params, opts) === 'subscription') return fetchSubscription(params, opts);
    return fetchHTTP(params, opts);
  }

  // Exposed for the browser tests, which check these against real input.
  window.LiveDropsPlayground = {
    websocketURL: websocketURL,
    headerValue: headerValue,
    operationType: operationType,
    scanOperationType: scanOperationType
  };

  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      isHeadersEditorEnabled: true,
      // shouldPersistHeaders is left unset: tokens stay out of localStorage
      // unless the user turns on "Persist headers" in Settings.
      defaultEditorToolsVisibility: 'headers'
    })
  );
})();
