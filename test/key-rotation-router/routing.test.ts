// createKeyRotationRouter on Express 5, Express 4 and Connect: what it answers per method (405 with
// Allow: POST), what it leaves to next(), and a query string on the mount path.
import { expect } from 'chai'
import request from 'supertest'
import { PATH, describeOnEachFramework } from './support.js'

describeOnEachFramework((f) => {
  const { app, sign } = f

  describe('routing', () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      it(`${method} → 405 with Allow: POST`, async () => {
        const { url } = await app()
        const res = await request(url)[method.toLowerCase() as 'get'](PATH)
        expect(res.status).to.equal(405)
        expect(res.headers.allow).to.equal('POST')
        expect(res.body).to.deep.equal({
          error: 'method_not_allowed',
          error_description: 'Only POST is allowed',
        })
      })
    }

    it('HEAD → 405 with Allow: POST and no body', async () => {
      const { url } = await app()
      const res = await request(url).head(PATH)
      expect(res.status).to.equal(405)
      expect(res.headers.allow).to.equal('POST')
      // The headers of the GET refusal, without its body.
      expect(res.text).to.equal(undefined)
      expect(res.headers['content-type']).to.equal('application/json; charset=utf-8')
      const get = JSON.stringify({
        error: 'method_not_allowed',
        error_description: 'Only POST is allowed',
      })
      expect(res.headers['content-length']).to.equal(String(Buffer.byteLength(get)))
      expect(f.verifier.refreshes).to.equal(0)
    })

    it('another sub-path goes to next()', async () => {
      const { url } = await app()
      const { body, headers } = sign()
      const res = await request(url).post(`${PATH}/other`).set(headers).send(body)
      expect([res.status, res.body]).to.deep.equal([404, { fellThrough: true }])
      expect(f.verifier.refreshes).to.equal(0)
    })

    it('a query string on the mount path is still ours', async () => {
      const { url } = await app()
      const { body, headers } = sign()
      const res = await request(url).post(`${PATH}?attempt=2`).set(headers).send(body)
      expect([res.status, res.body]).to.deep.equal([200, { received: true }])
    })
  })
})
