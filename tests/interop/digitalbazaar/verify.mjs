#!/usr/bin/env node
/*
 * Independent offline verifier for W3C VC 2.0 credentials (Open Badges 3.0,
 * CLR 2.0, BitstringStatusListCredential) secured with Data Integrity proofs,
 * cryptosuite eddsa-rdfc-2022, using Digital Bazaar's reference JS stack.
 *
 * Usage:  node verify.mjs < input.json > result.json
 *
 * Input (one JSON object on stdin):
 *   {
 *     "contexts":    {"<@context URL>": <context document (object or JSON text)>, ...},
 *     "documents":   {"<https URL>": <JSON document>, ...},  // DID documents
 *                    // (at their did:web https URL), status list credentials,
 *                    // https controller documents
 *     "credentials": [<credential>, ...],
 *     "now":         "2030-01-01T00:00:00Z"                  // optional
 *   }
 *
 * Output (one JSON object on stdout): see README.md ("Output").
 * Exit code: 0 when every credential was processed (whatever the verdicts),
 * 2 on unusable input or an internal error (then {"error": "..."} is printed).
 *
 * Nothing is ever fetched from the network: the document loader below only
 * serves what is in the input, did:key (computed locally) and did:web
 * (mapped to an https URL that must be present in "documents").
 */
import {readFileSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import jsonld from 'jsonld';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022CryptoSuite} from
  '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import * as didKey from '@digitalbazaar/did-method-key';
import {checkStatus} from '@digitalbazaar/vc-bitstring-status-list';

// Belt and braces: jsonld's default loader in Node fetches over HTTP. Every
// call in this file passes its own `documentLoader`, but if any code path in
// the stack ever fell back to the default, it must fail instead of fetching.
jsonld.documentLoader = async url => {
  throw new Error(`Network access refused by the harness (default loader): ${url}`);
};

// ---------------------------------------------------------------------------
// Document loader
// ---------------------------------------------------------------------------

// did:key resolution is computed locally by Digital Bazaar's driver; only
// Ed25519 keys (multibase header "z6Mk") are enabled.
const didKeyDriver = didKey.driver();
didKeyDriver.use({
  multibaseMultikeyHeader: 'z6Mk',
  fromMultibase: Ed25519Multikey.from
});

/**
 * Maps a did:web DID (no fragment, query or path) to the https URL of its
 * DID document, as the did:web method specification says:
 *   did:web:example.com               -> https://example.com/.well-known/did.json
 *   did:web:example.com:path:to       -> https://example.com/path/to/did.json
 *   did:web:127.0.0.1%3A8000          -> https://127.0.0.1:8000/.well-known/did.json
 * Only the port colon ("%3A" in the host segment) is percent-decoded; path
 * segments are kept as they are (they are already URL path segments).
 *
 * @param {string} did - A did:web DID.
 * @returns {string} The https URL of the DID document.
 */
export function didWebToUrl(did) {
  const msi = did.slice('did:web:'.length);
  if(!msi || /[/?#]/.test(msi)) {
    throw new Error(`Invalid did:web DID "${did}".`);
  }
  const segments = msi.split(':');
  if(segments.some(s => s === '')) {
    throw new Error(`Invalid did:web DID "${did}" (empty segment).`);
  }
  const host = segments[0].replace(/%3A/gi, ':');
  // a host may be a name or an IPv4 address, with an optional port
  if(!/^[A-Za-z0-9.-]+(:\d+)?$/.test(host)) {
    throw new Error(`Invalid did:web host "${host}" in "${did}".`);
  }
  const path = segments.slice(1);
  return path.length === 0 ?
    `https://${host}/.well-known/did.json` :
    `https://${host}/${path.join('/')}/did.json`;
}

/**
 * Finds the object with the given absolute `id` in a controller / DID
 * document: in `verificationMethod` or embedded in a verification
 * relationship. Relative ids ("#k1") in the document are resolved against
 * the document's `id`.
 */
function findVerificationMethod({document, id}) {
  const base = document.id;
  const absolute = ref =>
    (typeof ref === 'string' && ref.startsWith('#') && base) ? base + ref : ref;
  const props = [
    'verificationMethod', 'assertionMethod', 'authentication',
    'capabilityInvocation', 'capabilityDelegation', 'keyAgreement'
  ];
  for(const prop of props) {
    for(const vm of [].concat(document[prop] || [])) {
      if(vm && typeof vm === 'object' && absolute(vm.id) === id) {
        return vm;
      }
    }
  }
  return undefined;
}

/**
 * Creates the document loader. It serves ONLY:
 *   1. the given contexts (exact URL match);
 *   2. did:key DIDs and DID URLs (computed locally by did-method-key);
 *   3. did:web DIDs and DID URLs: the DID document is looked up in
 *      `documents` at the https URL from `didWebToUrl`; its `id` must equal
 *      the DID. A DID URL with a fragment gives the matching verification
 *      method with the DID document's `@context` (what Digital Bazaar's
 *      DataIntegrityProof / Ed25519Multikey.from expect);
 *   4. documents given in `documents`, looked up by exact URL; for a URL with
 *      a fragment that is not itself a key, the fragment is dereferenced in
 *      the document at the URL without the fragment (controller documents
 *      served over https, as in Digital Bazaar's own examples).
 * Anything else throws. Note: jsonld-signatures wraps every loader with its
 * own static copies of https://w3id.org/security/v1 and /v2 (it
 * serves those two URLs before this loader is asked).
 *
 * @param {object} options - Options.
 * @param {object} options.contexts - Map of context URL -> context document.
 * @param {object} options.documents - Map of URL -> JSON document.
 * @param {string[]} [options.trace] - If given, every requested URL is pushed.
 * @returns {Function} An async documentLoader(url).
 */
export function createDocumentLoader({contexts = {}, documents = {}, trace} = {}) {
  const ctxMap = new Map();
  // DID Core v1, the context of DID documents, from Digital Bazaar's own package
  // (did-context): the service publishes DID documents but never signs with it.
  ctxMap.set('https://www.w3.org/ns/did/v1', JSON.parse(readFileSync(
    new URL('./node_modules/did-context/contexts/did-v1.jsonld', import.meta.url),
    'utf8')));
  for(const [url, ctx] of Object.entries(contexts)) {
    ctxMap.set(url, typeof ctx === 'string' ? JSON.parse(ctx) : ctx);
  }
  const docMap = new Map(Object.entries(documents));

  // a fresh copy for each caller: callers must not be able to change the input
  const remote = (url, document) =>
    ({contextUrl: null, documentUrl: url, document: structuredClone(document)});

  const dereference = ({url, document, base}) => {
    const vm = findVerificationMethod({document, id: url});
    if(!vm) {
      throw new Error(`"${url}" is not found in the document at "${base}".`);
    }
    // the id is made absolute (a DID document may use relative "#k1" ids)
    return remote(url, {'@context': document['@context'], ...vm, id: url});
  };

  return async function documentLoader(url) {
    trace?.push(url);
    if(typeof url !== 'string') {
      throw new TypeError(`The document loader was given a non-string URL (${url}).`);
    }
    // 1. contexts
    if(ctxMap.has(url)) {
      return {contextUrl: null, documentUrl: url, document: ctxMap.get(url)};
    }
    // 2. did:key
    if(url.startsWith('did:key:')) {
      return remote(url, await didKeyDriver.get({url}));
    }
    // 3. did:web
    if(url.startsWith('did:web:')) {
      const [did, fragment] = url.split('#');
      const docUrl = didWebToUrl(did);
      if(!docMap.has(docUrl)) {
        throw new Error(
          `DID document of "${did}" not given (expected in "documents" at ` +
          `"${docUrl}").`);
      }
      const didDocument = docMap.get(docUrl);
      if(didDocument.id !== did) {
        throw new Error(
          `The DID document at "${docUrl}" has id "${didDocument.id}", ` +
          `not "${did}".`);
      }
      if(fragment === undefined) {
        return remote(url, didDocument);
      }
      return dereference({url, document: didDocument, base: docUrl});
    }
    // 4. documents (and fragments inside them)
    if(docMap.has(url)) {
      return remote(url, docMap.get(url));
    }
    const hash = url.indexOf('#');
    if(hash > 0 && docMap.has(url.slice(0, hash))) {
      const base = url.slice(0, hash);
      return dereference({url, document: docMap.get(base), base});
    }
    throw new Error(`Document loader refused "${url}": not in the given ` +
      'contexts or documents (no network access).');
  };
}

// ---------------------------------------------------------------------------
// Error flattening
// ---------------------------------------------------------------------------

/**
 * Flattens Digital Bazaar / jsonld errors into readable strings:
 * VerificationError wraps `errors`, status errors carry `cause`, jsonld
 * errors carry `details` (safe-mode events, loader failures).
 *
 * @param {*} error - An Error, an array of errors or anything else.
 * @param {string[]} [out] - Internal: the lines collected so far.
 * @param {Set} [seen] - Internal: errors already visited (cycles).
 * @returns {string[]} One line per leaf error.
 */
export function flattenErrors(error, out = [], seen = new Set()) {
  if(error === undefined || error === null) {
    return out;
  }
  if(Array.isArray(error)) {
    error.forEach(e => flattenErrors(e, out, seen));
    return out;
  }
  if(typeof error !== 'object') {
    out.push(String(error));
    return out;
  }
  if(seen.has(error)) {
    return out;
  }
  seen.add(error);
  // umbrella errors: report the wrapped ones instead of "Verification error(s)."
  if(Array.isArray(error.errors) && error.errors.length > 0) {
    return flattenErrors(error.errors, out, seen);
  }
  let line = error.name && error.name !== 'Error' ?
    `${error.name}: ${error.message}` : String(error.message);
  const event = error.details?.event;
  if(event) {
    // jsonld safe mode: the event says which term / value was rejected
    line += ` [safe mode event ${event.code}: ${event.message ?? ''}` +
      `${event.details ? ' ' + JSON.stringify(event.details) : ''}]`;
  } else if(error.details?.url) {
    line += ` [url: ${error.details.url}]`;
  }
  out.push(line);
  flattenErrors(error.cause, out, seen);
  flattenErrors(error.details?.cause, out, seen);
  return out;
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

// a new suite per verification: DataIntegrityProof keeps a per-instance hash
// cache, so instances are not shared between concurrent verifications
const newSuite = () =>
  new DataIntegrityProof({cryptosuite: eddsaRdfc2022CryptoSuite});

const asArray = v => (v === undefined ? [] : [].concat(v));
const hasType = (obj, type) => asArray(obj?.type).includes(type);

/** Summarises each proof's result (verification method, ok, errors). */
function proofResults(result) {
  return asArray(result.results).filter(r => r.proof).map(r => ({
    verificationMethod: r.proof.verificationMethod,
    cryptosuite: r.proof.cryptosuite,
    verified: r.verified === true,
    errors: flattenErrors(r.error)
  }));
}

/**
 * Checks every BitstringStatusListEntry of a credential with
 * @digitalbazaar/vc-bitstring-status-list, independently of the signature
 * result of the credential itself.
 *  - `checkStatus` (the library call, which also verifies the status list
 *    credential and requires matching issuers) decides `revoked`;
 *  - the status list credential is also verified on its own here, to report
 *    its errors in full (the library keeps only the first message) and to
 *    apply `now` (the library verifies it against the real clock);
 *  - if the library call fails, `bitIfListTrusted` reports the bit read with
 *    verifyBitstringStatusListCredential=false: informative only, since the
 *    list it comes from is not verified.
 */
async function statusCheck({credential, documentLoader, now, checkStatusOnce, cache}) {
  const entries = asArray(credential.credentialStatus)
    .filter(s => s?.type === 'BitstringStatusListEntry');
  if(entries.length === 0) {
    return null;
  }
  const out = {entries: [], checked: false, revoked: null, errors: []};
  const lib = await checkStatusOnce({credential, documentLoader, suite: newSuite()});
  out.checked = lib.verified === true;
  out.errors = flattenErrors(lib.error);
  if(out.checked) {
    // `status` true = the bit is set (revoked / suspended, per statusPurpose)
    out.revoked = lib.results.some(r => r.status === true &&
      r.credentialStatus.statusPurpose === 'revocation');
    out.suspended = lib.results.some(r => r.status === true &&
      r.credentialStatus.statusPurpose === 'suspension');
  } else {
    const raw = await checkStatus({
      credential, documentLoader, suite: newSuite(),
      verifyBitstringStatusListCredential: false
    });
    out.bitIfListTrusted = raw.verified ?
      raw.results.map(r => ({
        statusPurpose: r.credentialStatus.statusPurpose,
        statusListIndex: r.credentialStatus.statusListIndex,
        set: r.status
      })) : null;
  }
  for(const entry of entries) {
    const url = entry.statusListCredential;
    const e = {
      statusPurpose: entry.statusPurpose,
      statusListIndex: entry.statusListIndex,
      statusListCredential: url
    };
    // verified once per URL and run (many credentials share one list)
    if(!cache.statusLists.has(url)) {
      cache.statusLists.set(url, (async () => {
        try {
          const {document: slc} = await documentLoader(url);
          const r = await verifyOne({
            credential: slc, documentLoader, now, cache,
            nested: false, status: false
          });
          // the library does not compare these; reported for information
          r.idMatchesUrl = slc.id === url;
          return r;
        } catch(err) {
          return {verified: false, valid: false, errors: flattenErrors(err)};
        }
      })());
    }
    e.statusListCredentialResult = await cache.statusLists.get(url);
    out.entries.push(e);
  }
  return out;
}

/**
 * Verifies one credential with @digitalbazaar/vc verifyCredential:
 * structure and dates (validFrom / validUntil against `now`), every
 * eddsa-rdfc-2022 proof (JSON-LD safe mode on), proof purpose
 * assertionMethod with the controller check (the verification method's
 * controller document must list it in assertionMethod) and the issuer ==
 * controller check of CredentialIssuancePurpose.
 * For a ClrCredential every credentialSubject.verifiableCredential is also
 * verified on its own (result in `nested`).
 */
export async function verifyOne({
  credential, documentLoader, now, nested = true, status = true,
  cache = {statusLists: new Map()}
}) {
  const result = {
    id: credential?.id ?? null,
    type: credential?.type ?? null,
    verified: false,
    errors: [],
    proofs: []
  };
  const options = {credential, suite: newSuite(), documentLoader};
  if(now) {
    options.now = now;
  }
  // the library's checkStatus, run at most once per credential (vc calls it
  // only when the proofs verified; statusCheck below calls it in any case)
  let statusPromise;
  const checkStatusOnce = opts => (statusPromise ??= checkStatus(opts));
  if(credential?.credentialStatus) {
    // vc refuses a credential with credentialStatus unless given checkStatus;
    // its verified is then false when the status cannot be checked (NOT
    // when the credential is revoked: see `status.revoked`)
    options.checkStatus = checkStatusOnce;
  }
  const r = await vc.verifyCredential(options);
  result.verified = r.verified === true;
  result.errors = flattenErrors(r.error);
  result.proofs = proofResults(r);
  // jsonld-signatures accepts a proof SET when ANY of its proofs verifies
  // (ProofSet.verify: results.some(...)); this flag says whether all did
  result.allProofsVerified = result.proofs.length > 0 &&
    result.proofs.every(p => p.verified);
  const proofsOk = result.verified && result.allProofsVerified;

  if(status && credential?.credentialStatus) {
    result.status = await statusCheck({
      credential, documentLoader, now, checkStatusOnce, cache
    });
    // valid = every proof, purpose, dates verified AND status checked and
    // neither revoked nor suspended
    result.valid = proofsOk && result.status?.checked === true &&
      !result.status.revoked && !result.status.suspended;
  } else {
    result.valid = proofsOk;
  }

  if(nested && hasType(credential, 'ClrCredential')) {
    const inner = asArray(credential.credentialSubject?.verifiableCredential);
    result.nested = [];
    for(const [i, c] of inner.entries()) {
      const n = await verifyOne({credential: c, documentLoader, now, cache});
      n.path = `credentialSubject.verifiableCredential[${i}]`;
      result.nested.push(n);
    }
    result.nestedAllValid = result.nested.every(n => n.valid);
  }
  return result;
}

/** Runs the whole input object; returns the output object. */
export async function run(input) {
  if(!input || typeof input !== 'object' || !Array.isArray(input.credentials)) {
    throw new TypeError('Input must be an object with a "credentials" array.');
  }
  const trace = [];
  const documentLoader = createDocumentLoader({
    contexts: input.contexts, documents: input.documents, trace
  });
  const cache = {statusLists: new Map()};
  const results = [];
  for(const credential of input.credentials) {
    results.push(await verifyOne({
      credential, documentLoader, now: input.now, cache
    }));
  }
  const version = name => {
    try {
      const url = new URL(`./node_modules/${name}/package.json`, import.meta.url);
      return JSON.parse(readFileSync(url, 'utf8')).version;
    } catch{
      return null;
    }
  };
  return {
    harness: {
      node: process.version,
      packages: Object.fromEntries([
        '@digitalbazaar/vc', '@digitalbazaar/data-integrity',
        '@digitalbazaar/eddsa-rdfc-2022-cryptosuite',
        '@digitalbazaar/vc-bitstring-status-list', 'jsonld-signatures',
        'jsonld', 'rdf-canonize'
      ].map(n => [n, version(n)]))
    },
    // true only if every credential (and every nested one) is valid
    allValid: results.every(r => r.valid && r.nestedAllValid !== false),
    results,
    // every URL the document loader was asked for (deduplicated, in order)
    loaderRequests: [...new Set(trace)]
  };
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// CLI entry point (the functions above can also be imported)
if(process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const output = await run(JSON.parse(await readStdin()));
    process.stdout.write(JSON.stringify(output, null, 2) + '\n');
  } catch(e) {
    process.stdout.write(JSON.stringify({error: flattenErrors(e)}) + '\n');
    process.exitCode = 2;
  }
}
