// Kept only for test/vectors/wycheproof.test.ts, which imports dist/core/jwks.js; delete once it
// imports dist/core/jwks-fetch.js.
export { buildKeyMap, fetchJwksDocument } from './jwks-fetch.js'
