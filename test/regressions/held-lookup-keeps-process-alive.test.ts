// An unknown kid is held until a JWKS fetch that starts after it (§3: a rotated key must not
// fail). That wait is a pending verification: in a process with nothing else keeping the event
// loop alive (a script awaiting verifyToken), it must still settle — before the fix its timer was
// unref'd, and Node exited with code 13 ("unsettled top-level await") and no answer at all.
import { expect } from 'chai'
import { spawn } from 'node:child_process'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

function runScript(
  source: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

describe('regression: a held unknown-kid lookup keeps its process alive until it settles', function () {
  this.timeout(20_000)
  let mock: MockAgentPress
  before(async () => {
    mock = await createMockAgentPress()
  })
  after(() => mock.close())

  it('a script awaiting verifyToken of an unknown kid gets kid_missing_or_unknown, not exit 13', async () => {
    // The JWKS is served by this process; the child has only its verifier and its own timers.
    const options = { ...mock.partnerMcp, jwksCooldownMs: 1000 }
    const good = mock.signToken()
    const unknown = mock.signToken({}, { kid: 'not-published' })
    const another = mock.signToken({}, { kid: 'not-published-either' })
    const before = mock.jwksRequestCount
    const { code, stdout, stderr } = await runScript(`
      import { PartnerTokenVerifier } from 'passport-agentpress-partner'
      const verifier = new PartnerTokenVerifier(${JSON.stringify(options)})
      await verifier.verifyToken(${JSON.stringify(good)})
      const reason = (token) => verifier.verifyToken(token).then(() => 'accepted', (e) => e.reason)
      // The first unknown kid refetches at once and starts the cooldown; the second is held on a
      // timer until the cooldown allows the next fetch.
      console.log(await reason(${JSON.stringify(unknown)}))
      console.log(await reason(${JSON.stringify(another)}))`)
    expect({ code, stdout, stderr }).to.deep.equal({
      code: 0,
      stdout: 'kid_missing_or_unknown\nkid_missing_or_unknown\n',
      stderr: '',
    })
    // The cold fetch, then one refetch for each unknown kid, each started after that kid arrived.
    expect(mock.jwksRequestCount - before).to.equal(3)
  })
})
