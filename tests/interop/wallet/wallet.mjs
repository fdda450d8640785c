// Test-only: a wallet that is not ours, against the service on loopback.
//
//   issue  - takes an openid-credential-offer:// URI and its tx_code with @openid4vc/openid4vci
//            (resolves the offer and the issuer and authorization server metadata, redeems the
//            pre-authorized code, asks the nonce endpoint, signs key proofs, receives the
//            credentials), then checks each SD-JWT VC with @sd-jwt/sd-jwt-vc (issuer signature
//            under the keys of /.well-known/jwt-vc-issuer, its vct type metadata, its status in
//            the Token Status List) and presents two of its competences with key binding, which
//            a verifier instance checks.
//   status - reads the Token Status List of every disclosed competence of an SD-JWT VC with
//            @sd-jwt/jwt-status-list, and verifies the credential's own status.
//
// Input on stdin (JSON), one report on stdout (JSON); exit code 0 when the report was written.
import { createHash, createPublicKey, randomBytes, verify as nodeVerify } from 'node:crypto';
import { setGlobalConfig } from '@openid4vc/utils';
import { clientAuthenticationAnonymous } from '@openid4vc/oauth2';
import { Openid4vciClient } from '@openid4vc/openid4vci';
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc';
import { ES256, digest, generateSalt } from '@sd-jwt/crypto-nodejs';
import { getListFromStatusListJWT } from '@sd-jwt/jwt-status-list';

// The service runs on http://127.0.0.1 in the tests; a real wallet insists on https.
setGlobalConfig({ allowInsecureUrls: true });

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
const input = JSON.parse(await new Promise((resolve) => {
  let data = '';
  process.stdin.on('data', (chunk) => { data += chunk; });
  process.stdin.on('end', () => resolve(data));
}));

async function holderKey() {
  const { publicKey, privateKey } = await ES256.generateKeyPair();
  const publicJwk = { kty: publicKey.kty, crv: publicKey.crv, x: publicKey.x, y: publicKey.y };
  return { publicJwk, sign: await ES256.getSigner(privateKey) };
}

function walletCallbacks(keys) {
  return {
    fetch,
    hash: (data, alg) => createHash(alg.replace('-', '').toLowerCase()).update(data).digest(),
    generateRandom: (length) => randomBytes(length),
    clientAuthentication: clientAuthenticationAnonymous(),
    signJwt: async (signer, { header, payload }) => {
      const key = keys.find((k) => JSON.stringify(k.publicJwk) === JSON.stringify(signer.publicJwk));
      const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
      return { jwt: `${signingInput}.${await key.sign(signingInput)}`, signerJwk: key.publicJwk };
    },
  };
}

// The issuer's keys, as SD-JWT VC says a verifier finds them: JWT VC issuer metadata.
async function issuerVerifier(issuer) {
  const metadata = await (await fetch(`${issuer}/.well-known/jwt-vc-issuer`)).json();
  if (metadata.issuer !== issuer) throw new Error('jwt-vc-issuer metadata names another issuer');
  return async (data, signature) => {
    const header = JSON.parse(Buffer.from(data.split('.')[0], 'base64url'));
    const jwk = metadata.jwks.keys.find((k) => k.kid === header.kid);
    if (!jwk || header.alg !== 'EdDSA') return false;
    return nodeVerify(null, Buffer.from(data), createPublicKey({ key: jwk, format: 'jwk' }),
      Buffer.from(signature, 'base64url'));
  };
}

function sdJwtVc(verifier, extra = {}) {
  return new SDJwtVcInstance({
    hasher: digest,
    hashAlg: 'sha-256',
    saltGenerator: generateSalt,
    verifier,
    kbVerifier: async (data, signature, payload) => {
      const check = await ES256.getVerifier(payload.cnf.jwk);
      return check(data, signature);
    },
    loadTypeMetadataFormat: true,
    ...extra,
  });
}

async function issue() {
  const keys = [];
  for (let n = 0; n < (input.copies ?? 1); n += 1) keys.push(await holderKey());
  const client = new Openid4vciClient({ callbacks: walletCallbacks(keys) });
  const offer = await client.resolveCredentialOffer(input.offerUri);
  const issuerMetadata = await client.resolveIssuerMetadata(offer.credential_issuer);
  const { accessTokenResponse } = await client.retrievePreAuthorizedCodeAccessTokenFromOffer({
    credentialOffer: offer, issuerMetadata, txCode: input.txCode,
  });
  const report = { version: issuerMetadata.originalDraftVersion, configurations: {} };
  for (const configurationId of input.configurations ?? offer.credential_configuration_ids) {
    const { c_nonce: nonce } = await client.requestNonce({ issuerMetadata });
    const jwts = [];
    for (const key of keys) {
      const { jwt } = await client.createCredentialRequestJwtProof({
        issuerMetadata, credentialConfigurationId: configurationId, nonce,
        signer: { method: 'jwk', alg: 'ES256', publicJwk: key.publicJwk },
      });
      jwts.push(jwt);
    }
    const response = await client.retrieveCredentials({
      issuerMetadata, accessToken: accessTokenResponse.access_token,
      credentialConfigurationId: configurationId, proofs: { jwt: jwts },
    });
    const credentials = response.credentialResponse.credentials.map((c) => c.credential);
    const entry = { credentials, holders: keys.map((k) => k.publicJwk) };
    if (issuerMetadata.credentialIssuer.credential_configurations_supported[configurationId].format === 'dc+sd-jwt') {
      entry.checks = await checkSdJwt(offer.credential_issuer, credentials, keys);
    }
    report.configurations[configurationId] = entry;
  }
  return report;
}

async function checkSdJwt(issuer, credentials, keys) {
  const verifier = await issuerVerifier(issuer);
  const checks = [];
  for (const [n, credential] of credentials.entries()) {
    const holderSide = new SDJwtVcInstance({
      hasher: digest, hashAlg: 'sha-256', saltGenerator: generateSalt,
      kbSigner: keys[n].sign, kbSignAlg: 'ES256',
    });
    const full = await sdJwtVc(verifier).verify(credential);
    const claims = await holderSide.getClaims(credential);
    // Two of the competences, with key binding to a verifier's nonce and audience.
    const frame = { competences: { 0: true, 1: true } };
    const kb = { payload: { iat: Math.floor(Date.now() / 1000), aud: 'https://verifier.example', nonce: 'vp-nonce-42' } };
    const presentation = await holderSide.present(credential, frame, { kb });
    const shown = await sdJwtVc(verifier).verify(presentation, { keyBindingNonce: 'vp-nonce-42' });
    // The same presentation claimed for another nonce must fail.
    let replayRefused = false;
    try {
      await sdJwtVc(verifier).verify(presentation, { keyBindingNonce: 'another-nonce' });
    } catch { replayRefused = true; }
    checks.push({
      verified: true,
      header: full.header,
      typeMetadata: full.typeMetadata?.mergedTypeMetadata?.vct,
      competences: claims.competences.length,
      cnf: full.payload.cnf,
      presented: shown.payload.competences,
      presentedHasName: 'name' in shown.payload,
      keyBinding: Boolean(shown.kb),
      replayRefused,
    });
  }
  return checks;
}

async function status() {
  const verifier = await issuerVerifier(input.issuer);
  const holderSide = new SDJwtVcInstance({ hasher: digest, hashAlg: 'sha-256' });
  const claims = await holderSide.getClaims(input.credential);
  const lists = new Map();
  const statusOf = async (reference) => {
    const { uri, idx } = reference.status_list;
    if (!lists.has(uri)) {
      const response = await fetch(uri, { headers: { Accept: 'application/statuslist+jwt' } });
      const token = await response.text();
      const [, payload] = token.split('.');
      // the list token is signed by the issuer, and is about this very list
      if (!(await verifier(token.split('.').slice(0, 2).join('.'), token.split('.')[2]))) {
        throw new Error(`status list ${uri} has a bad signature`);
      }
      if (JSON.parse(Buffer.from(payload, 'base64url')).sub !== uri) throw new Error('sub');
      lists.set(uri, getListFromStatusListJWT(token));
    }
    return lists.get(uri).getStatus(idx);
  };
  const competences = [];
  for (const competence of claims.competences) {
    competences.push({ esco_uri: competence.esco_uri, status: await statusOf(competence.status) });
  }
  let credentialValid = true;
  let error = null;
  try {
    await sdJwtVc(verifier).verify(input.credential);
  } catch (exc) { credentialValid = false; error = String(exc.message ?? exc); }
  return { competences, credentialStatus: await statusOf(claims.status), credentialValid, error };
}

try {
  const report = input.command === 'status' ? await status() : await issue();
  process.stdout.write(JSON.stringify(report));
} catch (exc) {
  process.stdout.write(JSON.stringify({ error: String(exc?.message ?? exc), stack: String(exc?.stack ?? ''), details: exc?.response ? await exc.response.text?.() : undefined }));
  process.exitCode = 1;
}
