// A real OpenID Connect provider (the `oidc-provider` package) for the urbanmesh tests.
//
//   node tests/oidc/provider.mjs [--port N]
//
// Listens on 127.0.0.1 (port 0 unless --port), then builds the Provider with the issuer
// `http://127.0.0.1:<bound port>` and prints exactly one line to stdout:
//   {"issuer": "http://127.0.0.1:PORT"}
// Everything else (oidc-provider's notices included) goes to stderr. Exits when stdin
// closes (so start it with a pipe as stdin) or on SIGTERM/SIGINT.
//
// Accounts log in at the provider's own login form (any password); consent is given
// automatically (first-party clients), so the browser flow is
// /auth -> /interaction/<uid> (login form) -> /auth/<uid> -> redirect_uri?code=...
// Access tokens are RS256 JWTs (typ "at+jwt") for the client's resource server.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

// Only the ready line goes to stdout: oidc-provider prints its notices with console.info.
console.log = console.error;
console.info = console.error;

// ---- accounts ----------------------------------------------------------------------

const ACCOUNTS = {
  'staff-admin': { tenant: 'herford', roles: ['admin'], name: 'Anna Admin' },
  'staff-editor': { tenant: 'herford', roles: ['editor'], name: 'Erik Editor' },
  'staff-viewer': { tenant: 'herford', roles: ['viewer'], name: 'Vera Viewer' },
  researcher: { tenant: 'herford', roles: ['researcher'], name: 'Rita Researcher' },
  citizen: { tenant: 'herford', roles: [], name: 'Carl Citizen' },
  'other-admin': { tenant: 'bielefeld', roles: ['admin'], name: 'Otto Admin' },
};

// The claims every token about `id` carries beyond the registered ones.
function accountClaims(id) {
  const account = ACCOUNTS[id];
  return {
    preferred_username: id,
    name: account.name,
    tenant: account.tenant,
    realm_access: { roles: [...account.roles] },
  };
}

async function findAccount(_ctx, id) {
  if (!Object.hasOwn(ACCOUNTS, id)) return undefined;
  return {
    accountId: id,
    async claims(_use, _scope) {
      return { sub: id, ...accountClaims(id) };
    },
  };
}

// ---- clients and their resource servers --------------------------------------------

const LOOPBACK_REDIRECTS = ['http://127.0.0.1/auth/callback', 'http://localhost/auth/callback'];
const LOOPBACK_POST_LOGOUT = ['http://127.0.0.1/', 'http://localhost/'];

// Resource indicator -> the access tokens' audience. Each client gets its own by default.
const RESOURCES = {
  'urn:urbanmesh': { audience: 'urbanmesh' },
  'urn:other-app': { audience: 'other-app' },
};

const CLIENTS = {
  urbanmesh: { secret: 'urbanmesh-secret', resource: 'urn:urbanmesh', accessTokenTTL: 3600 },
  'urbanmesh-short': { secret: 'urbanmesh-secret', resource: 'urn:urbanmesh', accessTokenTTL: 2 },
  'other-app': { secret: 'other-secret', resource: 'urn:other-app', accessTokenTTL: 3600 },
};

const clients = Object.entries(CLIENTS).map(([id, client]) => ({
  client_id: id,
  client_secret: client.secret,
  client_name: id,
  // Native: loopback redirect URIs match on any port (RFC 8252 section 7.3).
  application_type: 'native',
  redirect_uris: LOOPBACK_REDIRECTS,
  post_logout_redirect_uris: LOOPBACK_POST_LOGOUT,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  // The provider accepts client_secret_post as well for a client_secret_basic client.
  token_endpoint_auth_method: 'client_secret_basic',
}));

// ---- keys ---------------------------------------------------------------------------

function signingKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const kid = crypto.createHash('sha256').update(jwk.n).digest('base64url').slice(0, 16);
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

// ---- pages --------------------------------------------------------------------------

const escapeHtml = (value) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>
`;
}

function loginPage(uid, clientId, { login = '', error } = {}) {
  return page('Sign-in', `${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>\n` : ''}\
<p>Sign in to continue to <strong>${escapeHtml(clientId)}</strong>.</p>
<form id="login" method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
  <input type="hidden" name="prompt" value="login">
  <label>User <input type="text" name="login" value="${escapeHtml(login)}" required autofocus></label>
  <label>Password <input type="password" name="password" value=""></label>
  <button type="submit">Sign-in</button>
</form>
<form id="abort" method="post" action="/interaction/${escapeHtml(uid)}/abort">
  <button type="submit">Cancel</button>
</form>`);
}

function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// ---- the interactions (login form; consent given for these first-party clients) ---------

async function interaction(provider, req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    send(res, 400, page('Error', '<p>interaction mismatch</p>'));
    return;
  }
  const { prompt, params, session } = details;

  if (action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }

  if (prompt.name === 'login') {
    if (action === undefined && req.method === 'GET') {
      send(res, 200, loginPage(uid, params.client_id));
      return;
    }
    if (action === 'login' && req.method === 'POST') {
      const form = await readForm(req);
      const login = (form.get('login') || '').trim();
      if (!Object.hasOwn(ACCOUNTS, login)) {
        send(res, 401, loginPage(uid, params.client_id, { login, error: `unknown user "${login}"` }));
        return;
      }
      await provider.interactionFinished(req, res, {
        login: { accountId: login, amr: ['pwd'] },
      }, { mergeWithLastSubmission: false });
      return;
    }
  }

  if (prompt.name === 'consent') {
    // First-party clients: the End-User's consent is implied, nothing to show.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }

  send(res, 400, page('Error', `<p>unexpected ${escapeHtml(req.method)} for prompt ${escapeHtml(prompt.name)}</p>`));
}

// ---- the provider ---------------------------------------------------------------------

function configuration() {
  return {
    clients,
    jwks: { keys: [signingKey()] },
    findAccount,
    claims: {
      openid: ['sub', 'tenant', 'realm_access'],
      profile: ['name', 'preferred_username'],
    },
    // The ID token carries the scope's claims too, not only the userinfo endpoint.
    conformIdTokenClaims: false,
    cookies: {
      // Cookies do not tell ports apart: names that no relying party on 127.0.0.1 uses.
      names: { session: 'op_session', interaction: 'op_interaction', resume: 'op_interaction_resume' },
      keys: [crypto.randomBytes(32).toString('base64url')],
    },
    pkce: { required: () => true },
    interactions: { url: (_ctx, i) => `/interaction/${i.uid}` },
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          // The provider's form (with its xsrf field) plus the "yes" inside it.
          const confirm = form.replace('</form>', '<input type="hidden" name="logout" value="yes">'
            + '<button type="submit">Yes, sign me out</button></form>');
          ctx.type = 'html';
          ctx.body = page('Sign-out', `<p>Sign out from ${escapeHtml(ctx.host)}?</p>\n${confirm}`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = page('Signed out', '<p>You are signed out.</p>');
        },
      },
      resourceIndicators: {
        enabled: true,
        async defaultResource(ctx, client, oneOf) {
          if (oneOf) return oneOf;
          return CLIENTS[client.clientId]?.resource;
        },
        // A token request without `resource` gets the resource granted at /auth.
        useGrantedResource: async () => true,
        async getResourceServerInfo(_ctx, indicator, client) {
          // A client gets tokens for its own resource server only.
          const server = RESOURCES[indicator];
          if (!server || CLIENTS[client.clientId]?.resource !== indicator) throw new errors.InvalidTarget();
          return {
            scope: 'openid profile',
            audience: server.audience,
            accessTokenTTL: CLIENTS[client.clientId]?.accessTokenTTL ?? 3600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    async extraTokenClaims(_ctx, token) {
      if (token.kind !== 'AccessToken' || !token.accountId || !Object.hasOwn(ACCOUNTS, token.accountId)) {
        return undefined;
      }
      const { tenant, realm_access, preferred_username } = accountClaims(token.accountId);
      return { tenant, realm_access, preferred_username };
    },
    formats: {
      customizers: {
        async jwt(_ctx, _token, jwt) {
          jwt.payload.nbf = jwt.payload.iat;
        },
      },
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 24 * 3600,
      Interaction: 3600,
      Session: 24 * 3600,
      Grant: 24 * 3600,
    },
    // Refresh tokens for every code grant of a client allowed to refresh (not only offline_access).
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    clientBasedCORS: () => false,
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', Object.entries(out)
        .map(([key, value]) => `<pre><strong>${escapeHtml(key)}</strong>: ${escapeHtml(value)}</pre>`).join('\n'));
    },
  };
}

// ---- main -----------------------------------------------------------------------------

function requestedPort(argv) {
  const i = argv.indexOf('--port');
  if (i === -1) return 0;
  const port = Number(argv[i + 1]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port needs a port number, got ${argv[i + 1]}`);
  }
  return port;
}

let provider;
let handler;

const server = http.createServer((req, res) => {
  const match = /^\/interaction\/([^/?#]+)(?:\/(login|abort))?\/?(?:[?#].*)?$/.exec(req.url);
  if (match) {
    interaction(provider, req, res, match[1], match[2]).catch((error) => {
      console.error('interaction failed:', error);
      if (!res.headersSent) {
        const status = error instanceof errors.SessionNotFound ? 400 : 500;
        send(res, status, page('Error', `<pre>${escapeHtml(error.message)}</pre>`));
      } else {
        res.end();
      }
    });
    return;
  }
  handler(req, res);
});

server.listen(requestedPort(process.argv.slice(2)), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  provider = new Provider(issuer, configuration());
  provider.on('server_error', (_ctx, error) => console.error('server_error:', error));
  handler = provider.callback();
  process.stdout.write(`{"issuer": ${JSON.stringify(issuer)}}\n`);
});

function shutdown() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.stdin.on('end', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();
